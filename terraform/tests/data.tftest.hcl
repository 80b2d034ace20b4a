# Firestore, secrets, APIs and outputs.

mock_provider "google" {}
mock_provider "archive" {}
mock_provider "random" {}

variables {
  project_id = "demo-project"
  region     = "europe-west1"
}

run "firestore_native_with_ttl_on_oauth_states" {
  command = plan

  assert {
    condition = (
      google_firestore_database.main.name == "(default)" &&
      google_firestore_database.main.type == "FIRESTORE_NATIVE" &&
      google_firestore_database.main.location_id == "europe-west1"
    )
    error_message = "Firestore must be the (default) database in Native mode in var.region."
  }

  assert {
    condition = (
      google_firestore_field.oauth_states_ttl.collection == "oauth_states" &&
      google_firestore_field.oauth_states_ttl.field == "expires_at" &&
      length(google_firestore_field.oauth_states_ttl.ttl_config) == 1
    )
    error_message = "A TTL policy must cover oauth_states.expires_at."
  }
}

run "keyset_is_generated_without_entering_the_state" {
  command = plan

  assert {
    condition = (
      google_secret_manager_secret_version.app_keys.secret == google_secret_manager_secret.app_keys.id &&
      google_secret_manager_secret_version.app_keys.secret_data == null &&
      google_secret_manager_secret_version.app_keys.secret_data_wo_version == 1
    )
    error_message = "The keyset version must be written through the write-only secret_data_wo only."
  }

  assert {
    condition = (
      google_secret_manager_secret.oauth_client.secret_id == "gmail-oauth-client" &&
      google_secret_manager_secret.app_keys.secret_id == "gmail-app-keys"
    )
    error_message = "Secret IDs changed."
  }
}

run "required_apis_are_enabled" {
  command = plan

  assert {
    condition = length(setsubtract([
      "cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
      "artifactregistry.googleapis.com", "firestore.googleapis.com", "secretmanager.googleapis.com",
      "cloudscheduler.googleapis.com", "gmail.googleapis.com", "iam.googleapis.com", "storage.googleapis.com",
    ], [for s in google_project_service.apis : s.service])) == 0
    error_message = "A required API is not enabled."
  }

  assert {
    condition     = alltrue([for s in google_project_service.apis : !s.disable_on_destroy])
    error_message = "Destroy must not turn APIs off."
  }
}

run "outputs_a_user_needs_next" {
  command = plan

  assert {
    condition = (
      output.authorize_url == "https://europe-west1-demo-project.cloudfunctions.net/gmail-authorize" &&
      output.oauth_callback_url == "https://europe-west1-demo-project.cloudfunctions.net/gmail-oauth-callback" &&
      output.list_messages_url == "https://europe-west1-demo-project.cloudfunctions.net/gmail-list-messages" &&
      output.oauth_redirect_uri == output.oauth_callback_url
    )
    error_message = "URL outputs are wrong."
  }

  assert {
    condition = output.function_urls == {
      authorize    = "https://europe-west1-demo-project.cloudfunctions.net/gmail-authorize"
      callback     = "https://europe-west1-demo-project.cloudfunctions.net/gmail-oauth-callback"
      listmessages = "https://europe-west1-demo-project.cloudfunctions.net/gmail-list-messages"
      gmailpush    = "https://europe-west1-demo-project.cloudfunctions.net/gmail-push"
    }
    error_message = "function_urls must give every function's URL by its functions.json key."
  }

  assert {
    condition     = output.upload_client_secret_command == "gcloud secrets versions add gmail-oauth-client --project=demo-project --data-file=client_secret.json"
    error_message = "Upload command is wrong."
  }
}

run "project_id_must_be_an_id" {
  command = plan

  variables {
    project_id = "123456789012"
  }

  expect_failures = [var.project_id]
}

# The session travels in the return URL's fragment: plain http is refused.
run "return_origins_must_be_https_off_loopback" {
  command = plan

  variables {
    allowed_return_origins = ["http://app.example.com"]
  }

  expect_failures = [var.allowed_return_origins]
}

# Terraform is for deployments: unlike the functions' own check (which lets
# local runs use http on loopback), no http origin passes, localhost included.
run "return_origins_refuse_http_localhost" {
  command = plan

  variables {
    allowed_return_origins = ["https://app.example.com", "http://localhost:3000"]
  }

  expect_failures = [var.allowed_return_origins]
}

run "return_origins_refuse_http_127_0_0_1" {
  command = plan

  variables {
    allowed_return_origins = ["http://127.0.0.1:8081"]
  }

  expect_failures = [var.allowed_return_origins]
}

run "return_origins_refuse_http_ipv6_loopback" {
  command = plan

  variables {
    allowed_return_origins = ["http://[::1]:8081"]
  }

  expect_failures = [var.allowed_return_origins]
}

run "return_origins_refuse_a_path" {
  command = plan

  variables {
    allowed_return_origins = ["https://app.example.com/callback"]
  }

  expect_failures = [var.allowed_return_origins]
}

run "https_return_origins_reach_the_functions" {
  command = plan

  variables {
    allowed_return_origins = ["https://app.example.com", "https://localhost:8443"]
  }

  assert {
    condition = alltrue([
      for fn in google_cloudfunctions2_function.function :
      fn.service_config[0].environment_variables.ALLOWED_RETURN_ORIGINS == "https://app.example.com,https://localhost:8443"
    ])
    error_message = "https origins (a port, even on localhost) must be accepted and reach ALLOWED_RETURN_ORIGINS."
  }
}

run "mirror_indexes_are_declared" {
  command = plan

  assert {
    condition = (
      length(google_firestore_index.mirror) == 3 &&
      alltrue([for ix in google_firestore_index.mirror : ix.collection == "messages" && ix.query_scope == "COLLECTION"]) &&
      alltrue([for ix in google_firestore_index.mirror : ix.fields[length(ix.fields) - 1].field_path == "internal_date" && ix.fields[length(ix.fields) - 1].order == "DESCENDING"])
    )
    error_message = "The mirror's three composite indexes on messages (ending with internal_date descending) must be declared."
  }

  assert {
    condition = (
      contains(keys(google_firestore_index.mirror), "label_ids-spam_or_trash-internal_date") &&
      google_firestore_index.mirror["label_ids-spam_or_trash-internal_date"].fields[0].array_config == "CONTAINS" &&
      google_firestore_index.mirror["label_ids-spam_or_trash-internal_date"].fields[1].order == "ASCENDING"
    )
    error_message = "The label + spam/trash index must be label_ids CONTAINS, spam_or_trash ASCENDING, internal_date DESCENDING."
  }
}
