# The daily Gmail budget setting: left out by default (the code's default,
# Google's 80,000,000 units, applies), passed through when set, refused out
# of range.

mock_provider "google" {}
mock_provider "archive" {}
mock_provider "random" {}

variables {
  project_id = "demo-project"
  region     = "europe-west1"
}

run "daily_threshold_defaults_to_the_code" {
  command = plan

  assert {
    condition = alltrue([
      for fn in google_cloudfunctions2_function.function : !contains(keys(fn.service_config[0].environment_variables), "GMAIL_QUOTA_PROJECT_PER_DAY")
    ])
    error_message = "GMAIL_QUOTA_PROJECT_PER_DAY must be left unset by default, so the code's default applies."
  }
}

run "daily_threshold_is_passed_through" {
  command = plan

  variables {
    gmail_quota_project_per_day = 40000000
  }

  assert {
    condition = alltrue([
      for fn in google_cloudfunctions2_function.function : fn.service_config[0].environment_variables.GMAIL_QUOTA_PROJECT_PER_DAY == "40000000"
    ])
    error_message = "GMAIL_QUOTA_PROJECT_PER_DAY must follow gmail_quota_project_per_day."
  }
}

run "daily_threshold_out_of_range" {
  command = plan

  variables {
    gmail_quota_project_per_day = 999
  }

  expect_failures = [var.gmail_quota_project_per_day]
}

run "daily_threshold_not_whole" {
  command = plan

  variables {
    gmail_quota_project_per_day = 1500.5
  }

  expect_failures = [var.gmail_quota_project_per_day]
}
