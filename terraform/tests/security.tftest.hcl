# Least privilege. Plans against mock providers: no API calls.
# Every assertion names exact roles, members and targets, so widening or
# moving a grant fails a run.

mock_provider "google" {}
mock_provider "archive" {}
mock_provider "random" {}

variables {
  project_id = "demo-project"
  region     = "europe-west1"
}

run "one_service_account_per_function_and_one_for_the_scheduler" {
  command = plan

  assert {
    condition = {
      for k, sa in google_service_account.function : k => sa.account_id
      } == {
      authorize    = "gmail-authorize"
      callback     = "gmail-oauth-callback"
      listmessages = "gmail-list-messages"
      gmailpush    = "gmail-push"
    }
    error_message = "Expected exactly one runtime service account per function."
  }

  assert {
    condition = (
      google_service_account.scheduler.account_id == "gmail-scheduler" &&
      google_service_account.build.account_id == "gmail-build"
    )
    error_message = "The scheduler and the builds need their own service accounts."
  }

  assert {
    condition = alltrue([
      for k, fn in google_cloudfunctions2_function.function :
      fn.service_config[0].service_account_email == "${google_service_account.function[k].account_id}@demo-project.iam.gserviceaccount.com"
    ])
    error_message = "Each function must run as its own service account."
  }
}

run "secret_accessor_only_on_the_two_secrets_for_the_function_accounts_without_a_client_id" {
  command = plan

  assert {
    condition = toset([
      for b in google_secret_manager_secret_iam_member.function_reads_secret : "${b.secret_id} ${b.role} ${b.member}"
      ]) == toset(flatten([
        for fn in ["gmail-authorize", "gmail-oauth-callback", "gmail-list-messages", "gmail-push"] : [
          "gmail-oauth-client roles/secretmanager.secretAccessor serviceAccount:${fn}@demo-project.iam.gserviceaccount.com",
          "gmail-app-keys roles/secretmanager.secretAccessor serviceAccount:${fn}@demo-project.iam.gserviceaccount.com",
        ]
    ]))
    error_message = "Secret bindings must be exactly secretAccessor on the OAuth client and keyset secrets for the four function accounts (GmailPush refreshes tokens and opens them)."
  }

  assert {
    condition     = length(google_secret_manager_secret_iam_member.function_reads_secret) == 8
    error_message = "Expected 8 secret bindings (4 functions x 2 secrets), nothing more."
  }

  assert {
    condition = alltrue([
      for b in google_secret_manager_secret_iam_member.function_reads_secret :
      !contains([
        "serviceAccount:gmail-scheduler@demo-project.iam.gserviceaccount.com",
        "serviceAccount:gmail-build@demo-project.iam.gserviceaccount.com",
      ], b.member)
    ])
    error_message = "The scheduler and build accounts must not read secrets."
  }
}

run "firestore_access_only_for_function_accounts_on_this_database" {
  command = plan

  assert {
    condition = toset([
      for b in google_project_iam_member.function_firestore : "${b.role} ${b.member}"
      ]) == toset([
      "roles/datastore.user serviceAccount:gmail-authorize@demo-project.iam.gserviceaccount.com",
      "roles/datastore.user serviceAccount:gmail-oauth-callback@demo-project.iam.gserviceaccount.com",
      "roles/datastore.user serviceAccount:gmail-list-messages@demo-project.iam.gserviceaccount.com",
      "roles/datastore.user serviceAccount:gmail-push@demo-project.iam.gserviceaccount.com",
    ])
    error_message = "datastore.user must go to the four function accounts only (GmailPush reads credentials, writes refreshed tokens and mailboxes)."
  }

  assert {
    condition = alltrue([
      for b in google_project_iam_member.function_firestore :
      b.condition[0].expression == "resource.name == \"projects/demo-project/databases/(default)\""
    ])
    error_message = "datastore.user must be conditioned to the functions' Firestore database."
  }

  assert {
    condition     = toset([for b in google_project_iam_member.build : b.role]) == toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])
    error_message = "The build account gets log writing and image pushing at project level, nothing else."
  }

  assert {
    condition = (
      google_storage_bucket_iam_member.build_reads_source.role == "roles/storage.objectViewer" &&
      google_storage_bucket_iam_member.build_reads_source.member == "serviceAccount:gmail-build@demo-project.iam.gserviceaccount.com"
    )
    error_message = "The build account reads the source bucket only."
  }
}

run "scheduler_invokes_list_messages_only" {
  command = plan

  assert {
    condition = (
      google_cloud_run_service_iam_member.scheduler_invokes_list_messages.role == "roles/run.invoker" &&
      google_cloud_run_service_iam_member.scheduler_invokes_list_messages.member == "serviceAccount:gmail-scheduler@demo-project.iam.gserviceaccount.com" &&
      google_cloud_run_service_iam_member.scheduler_invokes_list_messages.service == "gmail-list-messages" &&
      google_cloud_run_service_iam_member.scheduler_invokes_list_messages.service == google_cloudfunctions2_function.function["listmessages"].name &&
      google_cloud_run_service_iam_member.scheduler_invokes_list_messages.location == "europe-west1"
    )
    error_message = "The scheduler account must get run.invoker on ListMessages' service and nothing else."
  }
}

run "the_three_http_functions_are_publicly_invokable_gmail_push_is_not" {
  command = plan

  assert {
    condition = {
      for k, b in google_cloud_run_service_iam_member.public : k => "${b.service} ${b.role} ${b.member}"
      } == {
      authorize    = "gmail-authorize roles/run.invoker allUsers"
      callback     = "gmail-oauth-callback roles/run.invoker allUsers"
      listmessages = "gmail-list-messages roles/run.invoker allUsers"
    }
    error_message = "Authorize, OAuthCallback and ListMessages authenticate callers themselves and must be invokable by allUsers."
  }

  assert {
    condition     = alltrue([for fn in google_cloudfunctions2_function.function : fn.service_config[0].ingress_settings == "ALLOW_ALL"])
    error_message = "Browsers and Cloud Scheduler reach the functions from the internet."
  }
}

run "source_bucket_is_private" {
  command = plan

  assert {
    condition = (
      google_storage_bucket.source.uniform_bucket_level_access &&
      google_storage_bucket.source.public_access_prevention == "enforced"
    )
    error_message = "The source bucket must be private with uniform access."
  }
}

# Issue 15 item 20: with the client id configured, Authorize gets the id and
# no access to the OAuth client secret; the other functions keep both and
# the functions check the two agree.
run "authorize_gets_the_client_id_not_the_client_secret" {
  command = plan

  variables {
    oauth_client_id = "123-abc.apps.googleusercontent.com"
  }

  assert {
    condition = toset([
      for b in google_secret_manager_secret_iam_member.function_reads_secret : "${b.secret_id} ${b.member}"
      ]) == toset([
      "gmail-app-keys serviceAccount:gmail-authorize@demo-project.iam.gserviceaccount.com",
      "gmail-oauth-client serviceAccount:gmail-oauth-callback@demo-project.iam.gserviceaccount.com",
      "gmail-app-keys serviceAccount:gmail-oauth-callback@demo-project.iam.gserviceaccount.com",
      "gmail-oauth-client serviceAccount:gmail-list-messages@demo-project.iam.gserviceaccount.com",
      "gmail-app-keys serviceAccount:gmail-list-messages@demo-project.iam.gserviceaccount.com",
      "gmail-oauth-client serviceAccount:gmail-push@demo-project.iam.gserviceaccount.com",
      "gmail-app-keys serviceAccount:gmail-push@demo-project.iam.gserviceaccount.com",
    ])
    error_message = "Authorize must read only the keyset once oauth_client_id is set; the callback, ListMessages and GmailPush read both secrets."
  }

  assert {
    condition = (
      google_cloudfunctions2_function.function["authorize"].service_config[0].environment_variables.OAUTH_CLIENT_ID == "123-abc.apps.googleusercontent.com" &&
      !contains(keys(google_cloudfunctions2_function.function["authorize"].service_config[0].environment_variables), "OAUTH_CLIENT_SECRET")
    )
    error_message = "Authorize must get OAUTH_CLIENT_ID and no OAUTH_CLIENT_SECRET."
  }

  assert {
    condition = alltrue([
      for k in ["callback", "listmessages"] :
      google_cloudfunctions2_function.function[k].service_config[0].environment_variables.OAUTH_CLIENT_SECRET == "projects/demo-project/secrets/gmail-oauth-client/versions/latest" &&
      google_cloudfunctions2_function.function[k].service_config[0].environment_variables.OAUTH_CLIENT_ID == "123-abc.apps.googleusercontent.com"
    ])
    error_message = "OAuthCallback and ListMessages need the client JSON (and get the id to check it against)."
  }
}

run "return_urls_are_https_exact_urls_or_prefixes" {
  command = plan

  variables {
    allowed_return_urls = ["https://app.example.com/oauth/done?tab=1", "https://app.example.com/app/*", "https://app.example.com:8443/", "https://other.example.com/*"]
  }

  assert {
    condition     = google_cloudfunctions2_function.function["authorize"].service_config[0].environment_variables.ALLOWED_RETURN_URLS == "https://app.example.com/oauth/done?tab=1,https://app.example.com/app/*,https://app.example.com:8443/,https://other.example.com/*"
    error_message = "ALLOWED_RETURN_URLS must be the allowed_return_urls, comma-joined."
  }
}

run "return_urls_refuse_http_even_on_localhost" {
  command = plan

  variables {
    allowed_return_urls = ["http://localhost:3000/"]
  }

  expect_failures = [var.allowed_return_urls]
}

run "return_urls_refuse_a_bare_fragment" {
  command = plan

  variables {
    allowed_return_urls = ["https://app.example.com/ok", "https://app.example.com/done#"]
  }

  expect_failures = [var.allowed_return_urls]
}

run "return_urls_refuse_userinfo" {
  command = plan

  variables {
    allowed_return_urls = ["https://app.example.com/ok", "https://u@app.example.com/"]
  }

  expect_failures = [var.allowed_return_urls]
}

run "return_urls_refuse_a_wildcard_not_after_a_slash" {
  command = plan

  variables {
    allowed_return_urls = ["https://app.example.com/ok", "https://app.example.com/app*"]
  }

  expect_failures = [var.allowed_return_urls]
}

run "return_urls_refuse_a_wildcard_inside_the_path" {
  command = plan

  variables {
    allowed_return_urls = ["https://app.example.com/ok", "https://app.example.com/*/x"]
  }

  expect_failures = [var.allowed_return_urls]
}

run "return_urls_refuse_a_comma" {
  command = plan

  variables {
    allowed_return_urls = ["https://app.example.com/ok", "https://app.example.com/a,b"]
  }

  expect_failures = [var.allowed_return_urls]
}
