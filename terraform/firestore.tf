# Firestore in Native mode: credentials/{sub}, oauth_states/{sha256(state)},
# mailboxes/{sub} and mailboxes/{sub}/messages/{id} (the mirror the frontend
# reads), outbox/{event id} (the events to the app not yet published),
# sync_state/sweep (the sweep's resume point, read by document name only).
#
# Indexes: the sweep's cursor over credentials (status == X, ordered by
# document ID) is served by Firestore's automatic single-field indexes. The
# mirror's listings of mailboxes/{sub}/messages (newest first, by a label,
# spam and trash left out) need the composite indexes listed in
# firestore-indexes.json, one google_firestore_index each below; a Go test
# (internal/store/fsstore) keeps that list equal to the queries the code
# makes. The events outbox has one composite index of its own (below).
# Single-field index *exemptions*: ciphertext fields are never queried, and
# indexing them would only cost index writes (and copy ciphertext into index
# entries).
resource "google_firestore_database" "main" {
  project     = var.project_id
  name        = "(default)" # the functions use the default database
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"

  deletion_policy = var.firestore_deletion_policy

  depends_on = [google_project_service.apis]
}

# Pending authorizations expire after 10 minutes; the code checks expires_at
# itself, and this TTL policy deletes the leftovers (usually within 24 h of
# expiry). TTL fields with steadily increasing timestamps are best left
# unindexed (an empty index_config disables the field's indexes).
resource "google_firestore_field" "oauth_states_ttl" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "oauth_states"
  field      = "expires_at"

  ttl_config {}
  index_config {}
}

resource "google_firestore_field" "credentials_unindexed" {
  for_each = toset(["refresh_token", "access_token"])

  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "credentials"
  field      = each.key

  index_config {}
}

locals {
  firestore_indexes = jsondecode(file("${path.module}/firestore-indexes.json")).indexes
}

# The mirror's composite indexes (see firestore-indexes.json). Building one
# on an existing database takes minutes; queries that need it fail with
# FAILED_PRECONDITION until it is ready, and the frontend answers 503.
resource "google_firestore_index" "mirror" {
  for_each = { for ix in local.firestore_indexes : join("-", [for f in ix.fields : f.field_path]) => ix }

  project     = var.project_id
  database    = google_firestore_database.main.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.field_path
      order        = try(fields.value.order, null)
      array_config = try(fields.value.array_config, null)
    }
  }
}

# The events outbox (outbox/{event id}): a user's pending events are read in
# order (user_id ==, order by seq), which needs this composite index; the
# bodies are never queried, so they are not indexed.
resource "google_firestore_index" "outbox_by_user" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "outbox"

  fields {
    field_path = "user_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "seq"
    order      = "ASCENDING"
  }
}

resource "google_firestore_field" "outbox_body_unindexed" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "outbox"
  field      = "body"

  index_config {}
}
