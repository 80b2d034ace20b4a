# The scheduled sweep: OIDC audience and identity must be what ListMessages checks.

mock_provider "google" {}
mock_provider "archive" {}
mock_provider "random" {}

variables {
  project_id = "demo-project"
  region     = "europe-west1"
}

run "scheduler_posts_to_list_messages_with_an_oidc_token" {
  command = plan

  assert {
    condition = (
      google_cloud_scheduler_job.sync.http_target[0].uri == "https://europe-west1-demo-project.cloudfunctions.net/gmail-list-messages" &&
      google_cloud_scheduler_job.sync.http_target[0].http_method == "POST" &&
      base64decode(google_cloud_scheduler_job.sync.http_target[0].body) == "{}"
    )
    error_message = "The job must POST {} to ListMessages."
  }

  assert {
    condition = (
      google_cloud_scheduler_job.sync.http_target[0].oidc_token[0].audience == "https://europe-west1-demo-project.cloudfunctions.net/gmail-list-messages" &&
      google_cloud_scheduler_job.sync.http_target[0].oidc_token[0].audience == google_cloudfunctions2_function.function["listmessages"].service_config[0].environment_variables.SCHEDULER_AUDIENCE
    )
    error_message = "The OIDC audience must be ListMessages' URL, equal to its SCHEDULER_AUDIENCE."
  }

  assert {
    condition = (
      google_cloud_scheduler_job.sync.http_target[0].oidc_token[0].service_account_email == "gmail-scheduler@demo-project.iam.gserviceaccount.com" &&
      google_cloudfunctions2_function.function["listmessages"].service_config[0].environment_variables.SCHEDULER_SERVICE_ACCOUNT == "gmail-scheduler@demo-project.iam.gserviceaccount.com" &&
      google_service_account.scheduler.account_id == "gmail-scheduler"
    )
    error_message = "The OIDC token must be for the scheduler account, which ListMessages trusts via SCHEDULER_SERVICE_ACCOUNT."
  }

  assert {
    condition     = length(google_cloud_scheduler_job.sync.http_target[0].oauth_token) == 0
    error_message = "Cloud Functions expect an OIDC ID token, not an OAuth access token."
  }

  assert {
    condition = (
      google_cloud_scheduler_job.sync.region == "europe-west1" &&
      google_cloud_scheduler_job.sync.schedule == "0 * * * *" &&
      output.scheduler_job_name == "gmail-sync-mailboxes"
    )
    error_message = "Defaults: scheduler in var.region, hourly."
  }
}

run "schedule_and_region_are_variables" {
  command = plan

  variables {
    schedule           = "*/15 * * * *"
    schedule_time_zone = "Europe/Berlin"
    scheduler_region   = "europe-west3"
  }

  assert {
    condition = (
      google_cloud_scheduler_job.sync.schedule == "*/15 * * * *" &&
      google_cloud_scheduler_job.sync.time_zone == "Europe/Berlin" &&
      google_cloud_scheduler_job.sync.region == "europe-west3"
    )
    error_message = "schedule, schedule_time_zone and scheduler_region must reach the job."
  }
}
