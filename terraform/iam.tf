# Least privilege: one runtime service account per function, one for the
# scheduler, one for building the function images. Every grant below is the
# narrowest scope the API offers; tests/security.tftest.hcl pins them.
#
#   function SAs  -> secretmanager.secretAccessor on the secrets each one
#                    reads: the keyset for all three (sessions, sealed
#                    tokens); the OAuth client JSON for OAuthCallback (code
#                    exchange) and ListMessages (refresh), and for Authorize
#                    only while oauth_client_id is unset (it needs the client
#                    id, never the secret: the keyset checks sessions and
#                    decrypts the token it revokes, and Google's revocation
#                    endpoint needs no client authentication),
#                 -> datastore.user on the project, conditioned to this
#                    Firestore database (Firestore IAM is project-level; an IAM
#                    condition on resource.name is the finest scope available).
#   scheduler SA  -> run.invoker on ListMessages only; nothing else.
#   build SA      -> writes build logs and images, reads the source bucket.

resource "google_service_account" "function" {
  for_each = local.functions

  project      = var.project_id
  account_id   = each.value.name
  display_name = "${each.value.entry_point} function (${var.name_prefix})"
  description  = "Runtime identity of the ${each.value.entry_point} Cloud Function."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "Sync scheduler (${var.name_prefix})"
  description  = "Identity in the OIDC token Cloud Scheduler sends to ListMessages."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "Function builds (${var.name_prefix})"
  description  = "Cloud Build identity that builds the function images."

  depends_on = [google_project_service.apis]
}

locals {
  # Service account emails, derived from account_id in the documented format of
  # user-managed accounts instead of read from the computed `email`: known at
  # plan time (reviewable plans; no unknowns in the functions' environment),
  # and the offline tests' mock provider would otherwise invent one identical
  # placeholder for every account, making "who gets what" untestable.
  function_sa_email  = { for k, sa in google_service_account.function : k => "${sa.account_id}@${var.project_id}.iam.gserviceaccount.com" }
  scheduler_sa_email = "${google_service_account.scheduler.account_id}@${var.project_id}.iam.gserviceaccount.com"
  build_sa_email     = "${google_service_account.build.account_id}@${var.project_id}.iam.gserviceaccount.com"

  secrets = {
    oauth_client = google_secret_manager_secret.oauth_client.secret_id
    app_keys     = google_secret_manager_secret.app_keys.secret_id
  }

  # The secrets each function reads (see the header).
  function_secrets = {
    for key in keys(local.functions) : key => (
      key == "authorize" && var.oauth_client_id != "" ? ["app_keys"] : ["oauth_client", "app_keys"]
    )
  }

  # (function, secret) pairs, one secretAccessor binding each.
  secret_grants = merge([
    for fn, secrets in local.function_secrets : {
      for s in secrets : "${fn}/${s}" => { function = fn, secret = s }
    }
  ]...)
}

resource "google_secret_manager_secret_iam_member" "function_reads_secret" {
  for_each = local.secret_grants

  project   = var.project_id
  secret_id = local.secrets[each.value.secret]
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${local.function_sa_email[each.value.function]}"
}

resource "google_project_iam_member" "function_firestore" {
  for_each = local.functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${local.function_sa_email[each.key]}"

  condition {
    title       = "only-${var.name_prefix}-firestore"
    description = "Limits the grant to the functions' Firestore database."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.main.name}\""
  }
}

# Public invocation of the HTTP functions (GmailPush is not public: only
# its Eventarc trigger's identity invokes it, pubsub.tf). Authorize,
# OAuthCallback and ListMessages are reached by
# browsers (Google redirects the user's browser to the callback; a frontend
# calls Authorize and ListMessages) which carry no Google identity, so Cloud
# Run's IAM check cannot be the gate: each function authenticates the caller
# itself (OAuth state + PKCE in the callback, a signed session bearer token for
# the frontend, a Google-signed OIDC token from the scheduler's service account
# with aud = ListMessages' URL for the sweep). Hence run.invoker for allUsers.
# If your organisation forbids allUsers (domain-restricted sharing), these
# bindings fail; see README.
resource "google_cloud_run_service_iam_member" "public" {
  for_each = local.http_functions

  project  = var.project_id
  location = var.region
  # A 2nd gen function runs as the Cloud Run service of the same name.
  service = google_cloudfunctions2_function.function[each.key].name
  role    = "roles/run.invoker"
  member  = "allUsers"
}

# The scheduler's own grant: invoker on ListMessages only. Redundant while the
# function is public, but it is the only grant the sweep needs, and it keeps
# the sync working if public access is ever removed.
resource "google_cloud_run_service_iam_member" "scheduler_invokes_list_messages" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function["listmessages"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${local.scheduler_sa_email}"
}

# Build identity (instead of the project's default compute account, which new
# projects no longer make an Editor).
resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/artifactregistry.writer",
  ])

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${local.build_sa_email}"
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${local.build_sa_email}"
}
