# The functions: runtime, entry points, environment (the configuration table
# of the README, read by internal/config), sizing variables and the
# per-function source zips.

mock_provider "google" {}
mock_provider "archive" {}
mock_provider "random" {}

variables {
  project_id = "demo-project"
  region     = "europe-west1"
}

run "runtime_and_entry_points" {
  command = plan

  assert {
    condition     = alltrue([for fn in google_cloudfunctions2_function.function : fn.build_config[0].runtime == "go126"])
    error_message = "Runtime must be go126."
  }

  assert {
    condition = {
      for k, fn in google_cloudfunctions2_function.function : k => "${fn.name} ${fn.build_config[0].entry_point}"
      } == {
      authorize    = "gmail-authorize Authorize"
      callback     = "gmail-oauth-callback OAuthCallback"
      listmessages = "gmail-list-messages ListMessages"
      gmailpush    = "gmail-push GmailPush"
    }
    error_message = "Entry points must be the names registered with functions.HTTP or functions.CloudEvent."
  }

  assert {
    condition = alltrue([
      for k, fn in google_cloudfunctions2_function.function :
      fn.build_config[0].source[0].storage_source[0].object == google_storage_bucket_object.function_source[k].name &&
      fn.build_config[0].source[0].storage_source[0].bucket == google_storage_bucket.source.name
    ])
    error_message = "Each function must build from its own uploaded zip."
  }

  assert {
    condition = alltrue([
      for k, fn in google_cloudfunctions2_function.function :
      fn.build_config[0].service_account == "projects/demo-project/serviceAccounts/gmail-build@demo-project.iam.gserviceaccount.com"
    ])
    error_message = "Builds run as the dedicated build account."
  }
}

run "environment_follows_the_configuration_table" {
  command = plan

  variables {
    allowed_return_origins = ["https://app.example.com", "https://admin.example.com:8443"]
    allowed_return_urls    = ["https://app.example.com/oauth/done", "https://app.example.com/app/*"]
  }

  assert {
    condition = alltrue([
      for fn in google_cloudfunctions2_function.function : fn.service_config[0].environment_variables == tomap({
        GOOGLE_CLOUD_PROJECT      = "demo-project"
        OAUTH_CLIENT_SECRET       = "projects/demo-project/secrets/gmail-oauth-client/versions/latest"
        APP_KEYS_SECRET           = "projects/demo-project/secrets/gmail-app-keys/versions/latest"
        OAUTH_REDIRECT_URL        = "https://europe-west1-demo-project.cloudfunctions.net/gmail-oauth-callback"
        ALLOWED_RETURN_ORIGINS    = "https://app.example.com,https://admin.example.com:8443"
        ALLOWED_RETURN_URLS       = "https://app.example.com/oauth/done,https://app.example.com/app/*"
        SCHEDULER_SERVICE_ACCOUNT = "gmail-scheduler@demo-project.iam.gserviceaccount.com"
        SCHEDULER_AUDIENCE        = "https://europe-west1-demo-project.cloudfunctions.net/gmail-list-messages"
        SYNC_QUERY                = "newer_than:30d"
        SYNC_CONCURRENCY          = "8"
        SYNC_DEADLINE             = "480s"
        STORE                     = "firestore"
        PUSH_TOPIC                = "projects/demo-project/topics/gmail-notifications"
        EVENTS_TOPIC              = "projects/demo-project/topics/gmail-events"
      })
    ])
    error_message = "Function environment must match the README's configuration table exactly."
  }

  assert {
    condition     = output.oauth_redirect_uri == google_cloudfunctions2_function.function["authorize"].service_config[0].environment_variables.OAUTH_REDIRECT_URL
    error_message = "The redirect URI output must be exactly OAUTH_REDIRECT_URL."
  }
}

run "sizing_comes_from_variables" {
  command = plan

  variables {
    function_memory               = "512Mi"
    function_cpu                  = "2"
    function_timeout_seconds      = 30
    list_messages_timeout_seconds = 900
    function_concurrency          = 10
    function_max_instances        = 2
    sync_deadline_seconds         = 840
  }

  assert {
    condition = {
      for k, fn in google_cloudfunctions2_function.function : k => [
        fn.service_config[0].available_memory,
        fn.service_config[0].available_cpu,
        fn.service_config[0].timeout_seconds,
        fn.service_config[0].max_instance_request_concurrency,
        fn.service_config[0].max_instance_count,
        fn.service_config[0].min_instance_count,
      ]
      } == {
      authorize    = ["512Mi", "2", 30, 10, 2, 0]
      callback     = ["512Mi", "2", 30, 10, 2, 0]
      listmessages = ["512Mi", "2", 900, 10, 2, 0]
      gmailpush    = ["512Mi", "2", 300, 10, 2, 0]
    }
    error_message = "Memory, CPU, timeout, concurrency and instances must follow the variables (min instances 0)."
  }

  assert {
    condition     = google_cloudfunctions2_function.function["listmessages"].service_config[0].environment_variables.SYNC_DEADLINE == "840s"
    error_message = "SYNC_DEADLINE must follow sync_deadline_seconds."
  }
}

run "sync_deadline_must_stay_below_the_timeout" {
  command = plan

  variables {
    list_messages_timeout_seconds = 300
    sync_deadline_seconds         = 300
  }

  expect_failures = [google_cloudfunctions2_function.function]
}

run "zips_hold_the_function_package_at_the_root_and_no_tests" {
  command = plan

  # Each zip: go.mod, go.sum and the function dir's non-test .go files at the
  # root; every non-test .go file of each package directory the function lists
  # in functions.json; nothing outside those directories. (The exact list is
  # compared with the Go test's by .ci/tf-check.)
  assert {
    condition = alltrue([
      for k, fn in jsondecode(file("${path.module}/functions.json")).functions :
      toset([for s in data.archive_file.function[k].source : s.filename if !strcontains(s.filename, "/")]) == setunion(
        ["go.mod", "go.sum"],
        [for f in fileset("${path.module}/../${fn.dir}", "*.go") : f if !endswith(f, "_test.go")],
      ) &&
      length(setsubtract(
        flatten([for p in fn.packages : [for f in fileset("${path.module}/..", "${p}/*.go") : f if !endswith(f, "_test.go")]]),
        [for s in data.archive_file.function[k].source : s.filename],
      )) == 0 &&
      alltrue([
        for s in data.archive_file.function[k].source : anytrue([for p in fn.packages : startswith(s.filename, "${p}/")])
        if strcontains(s.filename, "/")
      ])
    ])
    error_message = "A zip's file list differs from go.mod + go.sum + the function package at the root + the files of the packages it lists in functions.json."
  }

  assert {
    condition = alltrue(flatten([
      for k, a in data.archive_file.function : [
        for s in a.source :
        !startswith(s.filename, "internal/local/") && !startswith(s.filename, "internal/apidoc/") &&
        !anytrue([for part in split("/", dirname(s.filename)) : endswith(part, "test")])
      ]
    ]))
    error_message = "No local-only code (internal/local/), API-doc tooling (internal/apidoc/) or test helper package (a *test directory) may reach a zip."
  }

  assert {
    condition = alltrue(flatten([
      for k, a in data.archive_file.function : [
        for s in a.source :
        !endswith(s.filename, "_test.go") && !startswith(s.filename, "functions/") && !strcontains(s.filename, "testdata/")
      ]
    ]))
    error_message = "No _test.go, testdata/ or functions/ path may reach a zip."
  }

  assert {
    condition = alltrue([
      for k, a in data.archive_file.function : length([for s in a.source : s if !strcontains(s.filename, "/") && endswith(s.filename, ".go")]) > 0
    ])
    error_message = "Each zip needs its function package (.go files) at the root."
  }

  assert {
    condition = alltrue([
      for k, o in google_storage_bucket_object.function_source :
      can(regex("^${k}-[0-9a-f]{64}\\.zip$", o.name)) && o.source == data.archive_file.function[k].output_path
    ])
    error_message = "Objects are named <function>-<sha256 of the zip's contents>.zip, so a code change redeploys."
  }

  assert {
    condition     = length(distinct([for o in google_storage_bucket_object.function_source : o.name])) == length(google_cloudfunctions2_function.function)
    error_message = "Each function has its own zip."
  }
}
