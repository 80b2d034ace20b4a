# APIs the deployment and the running functions need.
locals {
  services = toset([
    "artifactregistry.googleapis.com",     # images built from the function sources
    "cloudbuild.googleapis.com",           # builds the sources with the Go buildpack
    "cloudfunctions.googleapis.com",       # the functions (2nd gen)
    "cloudresourcemanager.googleapis.com", # project IAM bindings
    "cloudscheduler.googleapis.com",       # the sync job
    "eventarc.googleapis.com",             # GmailPush's trigger on the notification topic
    "firestore.googleapis.com",            # state
    "gmail.googleapis.com",                # what the functions call for users
    "iam.googleapis.com",                  # service accounts
    "pubsub.googleapis.com",               # Gmail's notifications and the app's events
    "run.googleapis.com",                  # 2nd gen functions run on Cloud Run
    "secretmanager.googleapis.com",        # OAuth client JSON and app keyset
    "storage.googleapis.com",              # source bucket
  ])
}

resource "google_project_service" "apis" {
  for_each = local.services

  project = var.project_id
  service = each.key
  # Turning an API off on destroy would break anything else in the project
  # that uses it; leave APIs on.
  disable_on_destroy = false
}
