# Firestore in Native mode: credentials/{sub}, oauth_states/{sha256(state)}, outbox/{event id},
# mailboxes/{sub}/messages/{id}, sync_state/sweep (the sweep's resume point, read
# by document name only).
#
# Indexes: the sweep's cursor over credentials (status == X, ordered by
# document ID, start after a cursor) is an equality filter ordered by
# __name__, which Firestore's automatic single-field indexes serve, and the
# messages subcollection is only read in document-ID order. The one composite
# index is the events outbox's (below). What we do add besides are single-field index
# *exemptions*: ciphertext fields are never queried, and indexing them would
# only cost index writes (and copy ciphertext into index entries).
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
