output "authorize_url" {
  description = "Authorize: GET/POST/DELETE."
  value       = local.function_urls["authorize"]
}

output "oauth_callback_url" {
  description = "OAuthCallback."
  value       = local.function_urls["callback"]
}

output "list_messages_url" {
  description = "ListMessages (frontend GET, scheduler POST)."
  value       = local.function_urls["listmessages"]
}

output "oauth_redirect_uri" {
  description = "Register exactly this under 'Authorized redirect URIs' of the OAuth client (Web application)."
  value       = local.function_urls["callback"]
}

output "scheduler_job_name" {
  description = "Cloud Scheduler job that runs the sync."
  value       = google_cloud_scheduler_job.sync.name
}

output "scheduler_run_command" {
  description = "Runs the sync now."
  value       = "gcloud scheduler jobs run ${google_cloud_scheduler_job.sync.name} --project=${var.project_id} --location=${local.scheduler_region}"
}

output "oauth_client_secret_id" {
  description = "Secret Manager secret that holds the OAuth client JSON."
  value       = google_secret_manager_secret.oauth_client.secret_id
}

output "upload_client_secret_command" {
  description = "Uploads the OAuth client JSON downloaded from the console (run in the directory holding client_secret.json)."
  value       = "gcloud secrets versions add ${google_secret_manager_secret.oauth_client.secret_id} --project=${var.project_id} --data-file=client_secret.json"
}

output "function_service_accounts" {
  description = "Runtime service account of each function."
  value       = local.function_sa_email
}

output "scheduler_service_account" {
  description = "Identity in the scheduler's OIDC token (SCHEDULER_SERVICE_ACCOUNT)."
  value       = local.scheduler_sa_email
}

output "function_urls" {
  description = "URL of every function, by its key in functions.json."
  value       = local.function_urls
}

output "events_topic" {
  description = "The app's events topic (EVENTS_TOPIC): make your subscription on it (docs/integrating.md), e.g. gcloud pubsub subscriptions create my-app --topic=THIS --enable-message-ordering."
  value       = local.events_topic_id
}

output "notifications_topic" {
  description = "Gmail's notification topic (PUSH_TOPIC), which users.watch names and GmailPush is triggered by."
  value       = local.notifications_topic_id
}
