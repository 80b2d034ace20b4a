# The offline sweep: Cloud Scheduler POSTs {} to ListMessages with a
# Google-signed OIDC ID token for the scheduler's service account. ListMessages
# verifies the signature, that `email` is SCHEDULER_SERVICE_ACCOUNT and that
# `aud` is SCHEDULER_AUDIENCE, which is the same local as the audience below.
resource "google_cloud_scheduler_job" "sync" {
  project     = var.project_id
  region      = local.scheduler_region
  name        = "${var.name_prefix}-sync-mailboxes"
  description = "Syncs every connected user's mailbox through ListMessages."
  schedule    = var.schedule
  time_zone   = var.schedule_time_zone
  # Scheduler allows at most 30 minutes for an HTTP target.
  attempt_deadline = "${min(var.list_messages_timeout_seconds, 1800)}s"

  retry_config {
    # A sweep leaves checkpoints; the next scheduled run continues.
    retry_count = 0
  }

  http_target {
    uri         = local.function_urls["listmessages"]
    http_method = "POST"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = local.scheduler_sa_email
      audience              = local.function_urls["listmessages"]
    }
  }

  depends_on = [
    google_project_service.apis,
    google_cloud_run_service_iam_member.scheduler_invokes_list_messages,
  ]
}

locals {
  scheduler_region = var.scheduler_region != "" ? var.scheduler_region : var.region
}
