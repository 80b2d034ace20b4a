# The optional function settings (variables.tf, "function settings"): unset,
# their environment variables are left out (the code's defaults apply); set,
# they reach every function's environment; out of the range internal/config
# accepts, the plan is refused.

mock_provider "google" {}
mock_provider "archive" {}
mock_provider "random" {}

variables {
  project_id = "demo-project"
  region     = "europe-west1"
}

run "unset_settings_leave_the_code_defaults" {
  command = plan

  assert {
    condition = alltrue([
      for fn in google_cloudfunctions2_function.function : length(setintersection(keys(fn.service_config[0].environment_variables), [
        "OAUTH_SCOPES", "SESSION_TTL", "REQUEST_TIMEOUT", "OUTBOUND_TIMEOUT", "GMAIL_QUOTA_USER_PER_MIN", "GMAIL_QUOTA_PROJECT_PER_MIN",
      ])) == 0
    ])
    error_message = "An unset setting must leave its environment variable out, so the code's default applies."
  }
}

run "settings_reach_every_function" {
  command = plan

  variables {
    oauth_scopes                = ["openid", "email", "https://www.googleapis.com/auth/gmail.metadata", "https://www.googleapis.com/auth/gmail.readonly"]
    session_ttl_seconds         = 1800
    request_timeout_ms          = 20000
    outbound_timeout_ms         = 2500
    gmail_quota_user_per_min    = 6000
    gmail_quota_project_per_min = 1000000000
  }

  assert {
    condition = alltrue([
      for fn in google_cloudfunctions2_function.function : {
        for k, v in fn.service_config[0].environment_variables : k => v
        if contains(["OAUTH_SCOPES", "SESSION_TTL", "REQUEST_TIMEOUT", "OUTBOUND_TIMEOUT", "GMAIL_QUOTA_USER_PER_MIN", "GMAIL_QUOTA_PROJECT_PER_MIN"], k)
        } == {
        OAUTH_SCOPES                = "openid email https://www.googleapis.com/auth/gmail.metadata https://www.googleapis.com/auth/gmail.readonly"
        SESSION_TTL                 = "1800s"
        REQUEST_TIMEOUT             = "20000ms"
        OUTBOUND_TIMEOUT            = "2500ms"
        GMAIL_QUOTA_USER_PER_MIN    = "6000"
        GMAIL_QUOTA_PROJECT_PER_MIN = "1000000000"
      }
    ])
    error_message = "Each setting must reach every function's environment in the form internal/config parses."
  }

  assert {
    condition = alltrue([
      for fn in google_cloudfunctions2_function.function :
      fn.service_config[0].environment_variables.SYNC_QUERY == "newer_than:30d" &&
      fn.service_config[0].environment_variables.STORE == "firestore"
    ])
    error_message = "The other settings must stay as they were."
  }
}

run "settings_at_the_edges_of_their_ranges_are_accepted" {
  command = plan

  variables {
    oauth_scopes                  = ["openid"]
    session_ttl_seconds           = 86400
    request_timeout_ms            = 100
    outbound_timeout_ms           = 600000
    gmail_quota_user_per_min      = 10
    gmail_quota_project_per_min   = 10
    function_timeout_seconds      = 3600
    list_messages_timeout_seconds = 3600
  }

  assert {
    condition = (
      google_cloudfunctions2_function.function["callback"].service_config[0].environment_variables.OAUTH_SCOPES == "openid" &&
      google_cloudfunctions2_function.function["callback"].service_config[0].environment_variables.SESSION_TTL == "86400s" &&
      google_cloudfunctions2_function.function["callback"].service_config[0].environment_variables.REQUEST_TIMEOUT == "100ms" &&
      google_cloudfunctions2_function.function["callback"].service_config[0].environment_variables.OUTBOUND_TIMEOUT == "600000ms" &&
      google_cloudfunctions2_function.function["callback"].service_config[0].environment_variables.GMAIL_QUOTA_USER_PER_MIN == "10" &&
      google_cloudfunctions2_function.function["callback"].service_config[0].environment_variables.GMAIL_QUOTA_PROJECT_PER_MIN == "10"
    )
    error_message = "The edges of each range (internal/config's) must be accepted."
  }
}

run "scopes_without_openid_are_refused" {
  command = plan

  variables {
    oauth_scopes = ["email", "https://www.googleapis.com/auth/gmail.readonly"]
  }

  expect_failures = [var.oauth_scopes]
}

run "a_scope_with_a_space_is_refused" {
  command = plan

  variables {
    oauth_scopes = ["openid email"]
  }

  expect_failures = [var.oauth_scopes]
}

run "session_ttl_below_a_minute_is_refused" {
  command = plan

  variables {
    session_ttl_seconds = 59
  }

  expect_failures = [var.session_ttl_seconds]
}

run "session_ttl_above_a_day_is_refused" {
  command = plan

  variables {
    session_ttl_seconds = 86401
  }

  expect_failures = [var.session_ttl_seconds]
}

run "request_timeout_below_100ms_is_refused" {
  command = plan

  variables {
    request_timeout_ms = 99
  }

  expect_failures = [var.request_timeout_ms]
}

run "request_timeout_in_fractions_of_a_millisecond_is_refused" {
  command = plan

  variables {
    request_timeout_ms = 150.5
  }

  expect_failures = [var.request_timeout_ms]
}

run "outbound_timeout_above_10m_is_refused" {
  command = plan

  variables {
    outbound_timeout_ms = 600001
  }

  expect_failures = [var.outbound_timeout_ms]
}

run "outbound_timeout_below_100ms_is_refused" {
  command = plan

  variables {
    outbound_timeout_ms = 50
  }

  expect_failures = [var.outbound_timeout_ms]
}

run "request_timeout_at_or_above_the_function_timeout_is_refused" {
  command = plan

  variables {
    function_timeout_seconds = 60
    request_timeout_ms       = 60000
  }

  expect_failures = [google_cloudfunctions2_function.function]
}

run "user_quota_below_10_is_refused" {
  command = plan

  variables {
    gmail_quota_user_per_min = 9
  }

  expect_failures = [var.gmail_quota_user_per_min]
}

run "project_quota_above_1e9_is_refused" {
  command = plan

  variables {
    gmail_quota_project_per_min = 1000000001
  }

  expect_failures = [var.gmail_quota_project_per_min]
}
