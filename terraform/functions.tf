# The Cloud Functions (2nd gen, Go), one per entry of functions.json: HTTP
# functions (trigger "http": Authorize, OAuthCallback, ListMessages) and
# GmailPush (trigger "pubsub"), a CloudEvent function Eventarc triggers with
# the messages of the notification topic (pubsub.tf).
#
# Source layout: the Go buildpack compiles only the package at the ROOT of the
# uploaded source, so each function gets its own zip: go.mod, go.sum, its
# functions/<name>/*.go moved to the zip root, and the files of the module's
# packages it imports (its "packages" in functions.json, minus tests and
# testdata) - nothing else, so local-only code and test helpers are never
# deployed, and a change to a package redeploys only the functions that import
# it. The rules live in functions.json, which functions/buildpack_test.go reads
# too: that test checks each function's package list against `go list -deps`,
# assembles the same zips, builds them the way the buildpack does and starts
# them, and .ci/tf-check compares its file lists with the ones below.

locals {
  zip_rules = jsondecode(file("${path.module}/functions.json"))

  # Key (authorize, callback, listmessages, ...) => entry point, source dir,
  # package directories and the deployed name (name_prefix + short name).
  functions = {
    for key, fn in local.zip_rules.functions : key => {
      dir         = fn.dir
      entry_point = fn.entry_point
      name        = "${var.name_prefix}-${fn.name}"
      packages    = fn.packages
      trigger     = try(fn.trigger, "http")
    }
  }

  # The functions reached over HTTP (public URLs); the others are triggered
  # by Eventarc only.
  http_functions = { for k, fn in local.functions : k => fn if fn.trigger == "http" }

  source_root = abspath("${path.module}/..")

  # Every package directory some function lists.
  package_dirs = sort(distinct(flatten([for fn in local.functions : fn.packages])))

  # Directories holding .go files (outside excluded directories) at or below a
  # listed package directory: each is a Go package of its own.
  go_dirs = distinct([
    for f in flatten([for p in local.package_dirs : tolist(fileset(local.source_root, "${p}/**/*.go"))]) : dirname(f)
    if length(setintersection(split("/", dirname(f)), local.zip_rules.exclude_dirs)) == 0
  ])

  # Package directory => its files: everything at or below it minus excluded
  # suffixes (_test.go), anything inside an excluded directory (testdata/), and
  # anything at or below a subdirectory that is another package (it goes into a
  # zip only when a function lists it). What remains below the directory is its
  # embedded assets (static/ and the like).
  package_files = {
    for p in local.package_dirs : p => sort([
      for f in fileset(local.source_root, "${p}/**") : f
      if !anytrue([for s in local.zip_rules.exclude_suffixes : endswith(f, s)]) &&
      length(setintersection(split("/", dirname(f)), local.zip_rules.exclude_dirs)) == 0 &&
      !anytrue([for d in local.go_dirs : startswith(d, "${p}/") && (dirname(f) == d || startswith(dirname(f), "${d}/"))])
    ])
  }

  # Zip path => repository-relative source path, per function.
  function_sources = {
    for key, fn in local.functions : key => merge(
      { for f in local.zip_rules.root_files : f => f },
      merge([for p in fn.packages : { for f in local.package_files[p] : f => f }]...),
      {
        for f in fileset("${local.source_root}/${fn.dir}", "*.go") : f => "${fn.dir}/${f}"
        if !anytrue([for s in local.zip_rules.exclude_suffixes : endswith(f, s)])
      },
    )
  }

  # Content hash of each zip: sha256 over "zip-path file-sha256" lines. It is
  # known at plan time (unlike the zip's own checksum it does not depend on zip
  # metadata), and it names the uploaded object, so any change to a file that
  # goes into a function's zip uploads a new object, which changes the
  # function's build source and redeploys that function, and only that one.
  source_hash = {
    for key, files in local.function_sources : key => sha256(join("\n", [
      for zp in sort(keys(files)) : "${zp} ${filesha256("${local.source_root}/${files[zp]}")}"
    ]))
  }

  # Predictable URLs. A 2nd gen function's `url` is
  # https://REGION-PROJECT.cloudfunctions.net/NAME. The functions need each
  # other's URLs in their environment (every function needs OAuthCallback's URL
  # as OAUTH_REDIRECT_URL; ListMessages needs its own URL as SCHEDULER_AUDIENCE),
  # and a resource cannot reference its own attributes, so referencing
  # google_cloudfunctions2_function.function[*].url would be a cycle. Building
  # the URLs from known inputs breaks the cycle and makes them known at plan
  # time (they are printed as outputs before the first apply finishes, e.g. to
  # register the redirect URI). The function's own `url` attribute is this same
  # URL (README: "If the URLs ever differ").
  function_urls = {
    for key, fn in local.functions : key => "https://${var.region}-${var.project_id}.cloudfunctions.net/${fn.name}"
  }

  firestore_location = var.firestore_location != "" ? var.firestore_location : var.region

  # The settings of the README's "Configuration" table (internal/config reads
  # and validates them). Identical for every function (they share one
  # configuration loader, and each reads what it needs), but for the OAuth
  # client: see function_secret_env.
  function_env = merge({
    GOOGLE_CLOUD_PROJECT      = var.project_id
    APP_KEYS_SECRET           = local.app_keys_secret_version
    OAUTH_REDIRECT_URL        = local.function_urls["callback"]
    ALLOWED_RETURN_ORIGINS    = join(",", var.allowed_return_origins)
    ALLOWED_RETURN_URLS       = join(",", var.allowed_return_urls)
    SCHEDULER_SERVICE_ACCOUNT = local.scheduler_sa_email
    SCHEDULER_AUDIENCE        = local.function_urls["listmessages"]
    SYNC_QUERY                = var.sync_query
    SYNC_CONCURRENCY          = tostring(var.sync_concurrency)
    SYNC_DEADLINE             = "${var.sync_deadline_seconds}s"
    STORE                     = "firestore"
    PUSH_TOPIC                = local.notifications_topic_id
    EVENTS_TOPIC              = local.events_topic_id
  }, { for k, v in local.optional_env : k => v if v != null })

  # Settings whose variable defaults to null: unset, the environment variable
  # is left out and the code's own default applies.
  optional_env = {
    OAUTH_SCOPES                = var.oauth_scopes == null ? null : join(" ", var.oauth_scopes)
    SESSION_TTL                 = var.session_ttl_seconds == null ? null : "${var.session_ttl_seconds}s"
    REQUEST_TIMEOUT             = var.request_timeout_ms == null ? null : "${var.request_timeout_ms}ms"
    OUTBOUND_TIMEOUT            = var.outbound_timeout_ms == null ? null : "${var.outbound_timeout_ms}ms"
    GMAIL_QUOTA_USER_PER_MIN    = var.gmail_quota_user_per_min == null ? null : tostring(var.gmail_quota_user_per_min)
    GMAIL_QUOTA_PROJECT_PER_MIN = var.gmail_quota_project_per_min == null ? null : tostring(var.gmail_quota_project_per_min)
    GMAIL_QUOTA_PROJECT_PER_DAY = var.gmail_quota_project_per_day == null ? null : format("%d", var.gmail_quota_project_per_day)
    PUSH_WATCH_RENEWAL          = var.push_watch_renewal_hours == null ? null : "${var.push_watch_renewal_hours}h"
    PUSH_RESYNC_AFTER           = var.push_resync_after_minutes == null ? null : "${var.push_resync_after_minutes}m"
  }

  # Which OAuth client settings each function gets: the ones needing the
  # client secret (code exchange, token refresh) read the client JSON;
  # Authorize needs only the client id, so once oauth_client_id is set it
  # gets that and no access to the client secret (iam.tf). With both, the
  # functions check they agree.
  client_id_env = var.oauth_client_id == "" ? {} : { OAUTH_CLIENT_ID = var.oauth_client_id }
  function_secret_env = {
    for key in keys(local.functions) : key => (
      key == "authorize" && var.oauth_client_id != "" ? local.client_id_env :
      merge({ OAUTH_CLIENT_SECRET = local.oauth_client_secret_version }, local.client_id_env)
    )
  }

  # ListMessages runs the scheduled sweep inside one request, GmailPush a
  # user's sync under the sync lease (5 minutes); every other function (a new
  # one too) gets function_timeout_seconds.
  function_timeout = {
    for key in keys(local.functions) : key => (
      key == "listmessages" ? var.list_messages_timeout_seconds :
      key == "gmailpush" ? var.gmail_push_timeout_seconds : var.function_timeout_seconds
    )
  }
}

resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-fn-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Holds nothing but build inputs that can be rebuilt from the repository.
  force_destroy = true

  depends_on = [google_project_service.apis]
}

# Built at plan time from local.function_sources. Entries are written in sorted
# order without timestamps, so the zip is reproducible. `file()` needs UTF-8:
# every file in a function zip must be text (Go code, go.mod/go.sum, embedded
# HTML/CSS/JS/JSON); a binary asset under internal/ fails the plan with a clear
# "invalid UTF-8" error.
data "archive_file" "function" {
  for_each = local.function_sources

  type             = "zip"
  output_path      = "${path.module}/build/${each.key}.zip"
  output_file_mode = "0644"

  dynamic "source" {
    for_each = each.value
    content {
      filename = source.key
      content  = file("${local.source_root}/${source.value}")
    }
  }
}

resource "google_storage_bucket_object" "function_source" {
  for_each = local.functions

  bucket       = google_storage_bucket.source.name
  name         = "${each.key}-${local.source_hash[each.key]}.zip"
  source       = data.archive_file.function[each.key].output_path
  content_type = "application/zip"
}

resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  project     = var.project_id
  location    = var.region
  name        = each.value.name
  description = "${each.value.entry_point} (example.com/gmailoauth/${each.value.dir})"

  build_config {
    runtime         = "go126"
    entry_point     = each.value.entry_point # the name registered with functions.HTTP or functions.CloudEvent
    service_account = "projects/${var.project_id}/serviceAccounts/${local.build_sa_email}"

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.function_source[each.key].name
      }
    }
  }

  service_config {
    service_account_email            = local.function_sa_email[each.key]
    available_memory                 = var.function_memory
    available_cpu                    = var.function_cpu
    timeout_seconds                  = local.function_timeout[each.key]
    max_instance_request_concurrency = var.function_concurrency
    min_instance_count               = 0 # nothing runs (or costs) while idle
    max_instance_count               = var.function_max_instances
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = merge(local.function_env, local.function_secret_env[each.key])
  }

  # GmailPush: every message of the notification topic (Gmail's
  # notifications, the callback's and the sweep's tasks) becomes a
  # CloudEvent. Retried while the function answers an error (a store or
  # Gmail outage, events not yet published), with backoff, for up to the
  # topic's retention; the function acknowledges what a retry cannot fix and
  # messages older than a few hours. The trigger's own identity invokes it.
  dynamic "event_trigger" {
    for_each = each.value.trigger == "pubsub" ? [1] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = local.notifications_topic_id
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = local.push_trigger_sa_email
    }
  }

  lifecycle {
    precondition {
      condition     = var.sync_deadline_seconds > 0 && var.sync_deadline_seconds < var.list_messages_timeout_seconds
      error_message = "sync_deadline_seconds (SYNC_DEADLINE) must be positive and below list_messages_timeout_seconds, so a sweep stops, saves its checkpoints and answers before ListMessages is cut off."
    }
    precondition {
      condition     = var.request_timeout_ms == null ? true : var.request_timeout_ms < 1000 * min(var.function_timeout_seconds, var.list_messages_timeout_seconds)
      error_message = "request_timeout_ms (REQUEST_TIMEOUT) must be below function_timeout_seconds and list_messages_timeout_seconds, so a slow request ends in the app's 503 instead of being cut off by Cloud Run."
    }
  }

  depends_on = [
    google_project_service.apis,
    google_firestore_database.main,
    google_secret_manager_secret_iam_member.function_reads_secret,
    google_project_iam_member.function_firestore,
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_reads_source,
    google_pubsub_topic_iam_member.publishers,
  ]
}

