# Push: Gmail's notifications and the app's events (Pub/Sub).
#
#   notifications  users.watch names it (PUSH_TOPIC): Gmail publishes a
#                  notification for every change to a watched mailbox;
#                  OAuthCallback, ListMessages (the sweep) and the others hand
#                  users to GmailPush through it too. Eventarc delivers its
#                  messages to GmailPush (functions.tf).
#   events         the app's topic (EVENTS_TOPIC): GmailPush publishes every
#                  change to a mirror or a grant (docs/integrating.md). The
#                  app makes its own subscription (output events_topic).
#
# Who may publish where (least privilege, tests/push.tftest.hcl pins it):
#   Gmail's push service account  -> notifications (Google's requirement)
#   every function's account      -> notifications (the callback hands a new
#                                    grant on, the sweep the users due, a
#                                    revocation or a disconnect its events)
#   GmailPush's account           -> events, and nobody else
#   GmailPush's trigger account   -> run.invoker on GmailPush only

resource "google_pubsub_topic" "notifications" {
  project = var.project_id
  name    = "${var.name_prefix}-notifications"
  # A message GmailPush keeps failing on is retried for this long; the
  # function itself gives up on messages older than a few hours.
  message_retention_duration = "86400s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "events" {
  project = var.project_id
  name    = "${var.name_prefix}-events"

  depends_on = [google_project_service.apis]
}

locals {
  # Gmail publishes notifications as this Google-managed account; the topic
  # must let it (Gmail's push guide).
  gmail_push_publisher = "serviceAccount:gmail-api-push@system.gserviceaccount.com"

  topic_publishers = merge(
    { "notifications/gmail" = { topic = "notifications", member = local.gmail_push_publisher } },
    { for k in keys(local.functions) : "notifications/${k}" => { topic = "notifications", member = "serviceAccount:${local.function_sa_email[k]}" } },
    { for k, fn in local.functions : "events/${k}" => { topic = "events", member = "serviceAccount:${local.function_sa_email[k]}" } if fn.trigger == "pubsub" },
  )
  topics = {
    notifications = google_pubsub_topic.notifications.name
    events        = google_pubsub_topic.events.name
  }

  push_trigger_sa_email = "${google_service_account.push_trigger.account_id}@${var.project_id}.iam.gserviceaccount.com"

  # Full topic names, built from known inputs (known at plan time, like the
  # service account emails in iam.tf): PUSH_TOPIC and EVENTS_TOPIC.
  notifications_topic_id = "projects/${var.project_id}/topics/${google_pubsub_topic.notifications.name}"
  events_topic_id        = "projects/${var.project_id}/topics/${google_pubsub_topic.events.name}"
}

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = local.topic_publishers

  project = var.project_id
  topic   = local.topics[each.value.topic]
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}

# The identity Eventarc uses to call GmailPush: invoker on GmailPush, nothing
# else.
resource "google_service_account" "push_trigger" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push-trigger"
  display_name = "GmailPush trigger (${var.name_prefix})"
  description  = "Identity Eventarc uses to deliver the notification topic's messages to GmailPush."

  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_service_iam_member" "push_trigger_invokes_gmail_push" {
  for_each = { for k, fn in local.functions : k => fn if fn.trigger == "pubsub" }

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${local.push_trigger_sa_email}"
}
