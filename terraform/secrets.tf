# Two secrets, read by the functions at their first request and cached per
# instance (not passed as environment values, so an upload or rotation needs no
# redeploy, and the values never appear in the function's configuration).
#
# 1. The OAuth client JSON (Google's credentials.json, "web" shape). Terraform
#    creates the secret but never a version: the client is created by hand in
#    the console, and its JSON is uploaded with the command in the
#    `upload_client_secret_command` output. So it never passes through
#    Terraform and is not in the state.
#
# 2. The app keyset (token-encryption and session-signing keys):
#    {"encryption":{"primary":"k1","keys":{"k1":"<b64 32 bytes>"}},
#     "session":{"primary":"s1","keys":{"s1":"<b64 32 bytes>"}}}
#    Generated here so a first `apply` yields a working deployment, WITHOUT the
#    key material landing in the state: the bytes come from *ephemeral*
#    random_bytes resources (never persisted in state or plan) and reach Secret
#    Manager through the *write-only* secret_data_wo attribute (sent to the API,
#    never stored). The state only keeps secret_data_wo_version. The ephemeral
#    bytes are drawn anew on every run but only written when
#    var.app_keys_version changes, so a plain re-apply leaves the keys alone.
#    Trade-off: Terraform cannot see or detect drift of the keyset's value;
#    rotation is a deliberate act (README "Rotating the keyset").
resource "google_secret_manager_secret" "oauth_client" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-oauth-client"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret" "app_keys" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-app-keys"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

ephemeral "random_bytes" "encryption_key" {
  length = 32
}

ephemeral "random_bytes" "session_key" {
  length = 32
}

resource "google_secret_manager_secret_version" "app_keys" {
  secret = google_secret_manager_secret.app_keys.id

  secret_data_wo = jsonencode({
    encryption = {
      primary = "k${var.app_keys_version}"
      keys    = { "k${var.app_keys_version}" = ephemeral.random_bytes.encryption_key.base64 }
    }
    session = {
      primary = "s${var.app_keys_version}"
      keys    = { "s${var.app_keys_version}" = ephemeral.random_bytes.session_key.base64 }
    }
  })
  secret_data_wo_version = var.app_keys_version
}

locals {
  # Secret Manager version names the functions read (OAUTH_CLIENT_SECRET,
  # APP_KEYS_SECRET). "latest" so a new client JSON or keyset version is picked
  # up by new instances without redeploying.
  oauth_client_secret_version = "projects/${var.project_id}/secrets/${google_secret_manager_secret.oauth_client.secret_id}/versions/latest"
  app_keys_secret_version     = "projects/${var.project_id}/secrets/${google_secret_manager_secret.app_keys.secret_id}/versions/latest"
}
