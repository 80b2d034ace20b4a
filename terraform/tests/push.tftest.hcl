# Push: the notification topic Gmail publishes to, GmailPush's Eventarc
# trigger and its identity, the app's events topic. Plans against mock
# providers: no API calls. Every grant is named exactly, so widening one
# fails a run.

mock_provider "google" {}
mock_provider "archive" {}
mock_provider "random" {}

variables {
  project_id = "demo-project"
  region     = "europe-west1"
}

run "topics_and_who_may_publish" {
  command = plan

  assert {
    condition = (
      google_pubsub_topic.notifications.name == "gmail-notifications" &&
      google_pubsub_topic.events.name == "gmail-events" &&
      google_pubsub_topic.notifications.project == "demo-project" &&
      google_pubsub_topic.events.project == "demo-project"
    )
    error_message = "Expected the notification topic and the events topic in the project."
  }

  assert {
    condition = toset([
      for b in google_pubsub_topic_iam_member.publishers : "${b.topic} ${b.role} ${b.member}"
      ]) == toset([
      "gmail-notifications roles/pubsub.publisher serviceAccount:gmail-api-push@system.gserviceaccount.com",
      "gmail-notifications roles/pubsub.publisher serviceAccount:gmail-authorize@demo-project.iam.gserviceaccount.com",
      "gmail-notifications roles/pubsub.publisher serviceAccount:gmail-oauth-callback@demo-project.iam.gserviceaccount.com",
      "gmail-notifications roles/pubsub.publisher serviceAccount:gmail-list-messages@demo-project.iam.gserviceaccount.com",
      "gmail-notifications roles/pubsub.publisher serviceAccount:gmail-push@demo-project.iam.gserviceaccount.com",
      "gmail-events roles/pubsub.publisher serviceAccount:gmail-push@demo-project.iam.gserviceaccount.com",
    ])
    error_message = "Gmail's push account and the functions publish notifications (the functions hand users to GmailPush); only GmailPush publishes events."
  }
}

run "gmail_push_is_triggered_by_the_notification_topic_with_retries" {
  command = plan

  assert {
    condition = (
      length(google_cloudfunctions2_function.function["gmailpush"].event_trigger) == 1 &&
      google_cloudfunctions2_function.function["gmailpush"].event_trigger[0].event_type == "google.cloud.pubsub.topic.v1.messagePublished" &&
      google_cloudfunctions2_function.function["gmailpush"].event_trigger[0].pubsub_topic == "projects/demo-project/topics/gmail-notifications" &&
      google_cloudfunctions2_function.function["gmailpush"].event_trigger[0].retry_policy == "RETRY_POLICY_RETRY" &&
      google_cloudfunctions2_function.function["gmailpush"].event_trigger[0].trigger_region == "europe-west1" &&
      google_cloudfunctions2_function.function["gmailpush"].event_trigger[0].service_account_email == "gmail-push-trigger@demo-project.iam.gserviceaccount.com"
    )
    error_message = "GmailPush must have an Eventarc trigger on the notification topic, retried, invoked as its own trigger account."
  }

  assert {
    condition     = alltrue([for k in ["authorize", "callback", "listmessages"] : length(google_cloudfunctions2_function.function[k].event_trigger) == 0])
    error_message = "The HTTP functions have no event trigger."
  }

  assert {
    condition     = google_cloudfunctions2_function.function["gmailpush"].service_config[0].timeout_seconds == 300
    error_message = "GmailPush runs for up to gmail_push_timeout_seconds (default 300)."
  }
}

run "gmail_push_runs_as_its_own_account_and_only_its_trigger_invokes_it" {
  command = plan

  assert {
    condition     = google_cloudfunctions2_function.function["gmailpush"].service_config[0].service_account_email == "gmail-push@demo-project.iam.gserviceaccount.com"
    error_message = "GmailPush runs as its own service account."
  }

  assert {
    condition     = !contains(keys(google_cloud_run_service_iam_member.public), "gmailpush")
    error_message = "GmailPush must not be publicly invokable."
  }

  assert {
    condition = {
      for k, b in google_cloud_run_service_iam_member.push_trigger_invokes_gmail_push : k => "${b.service} ${b.role} ${b.member}"
      } == {
      gmailpush = "gmail-push roles/run.invoker serviceAccount:gmail-push-trigger@demo-project.iam.gserviceaccount.com"
    }
    error_message = "The trigger account gets run.invoker on GmailPush and nothing else."
  }

  assert {
    condition     = google_service_account.push_trigger.account_id == "gmail-push-trigger"
    error_message = "The trigger has its own service account."
  }
}

run "every_function_knows_the_topics_and_the_app_gets_the_events_topic" {
  command = plan

  variables {
    push_watch_renewal_hours  = 12
    push_resync_after_minutes = 90
  }

  assert {
    condition = alltrue([
      for fn in google_cloudfunctions2_function.function :
      fn.service_config[0].environment_variables.PUSH_TOPIC == "projects/demo-project/topics/gmail-notifications" &&
      fn.service_config[0].environment_variables.EVENTS_TOPIC == "projects/demo-project/topics/gmail-events" &&
      fn.service_config[0].environment_variables.PUSH_WATCH_RENEWAL == "12h" &&
      fn.service_config[0].environment_variables.PUSH_RESYNC_AFTER == "90m"
    ])
    error_message = "PUSH_TOPIC, EVENTS_TOPIC, PUSH_WATCH_RENEWAL and PUSH_RESYNC_AFTER must reach every function."
  }

  assert {
    condition     = output.events_topic == "projects/demo-project/topics/gmail-events" && output.notifications_topic == "projects/demo-project/topics/gmail-notifications"
    error_message = "The outputs must name the events topic (for the app's subscription) and the notification topic."
  }
}

run "the_outbox_has_its_index" {
  command = plan

  assert {
    condition = (
      google_firestore_index.outbox_by_user.collection == "outbox" &&
      [for f in google_firestore_index.outbox_by_user.fields : "${f.field_path} ${f.order}"] == ["user_id ASCENDING", "seq ASCENDING"]
    )
    error_message = "A user's pending events are read by user_id and seq: the outbox needs that composite index."
  }

  assert {
    condition     = google_firestore_field.outbox_body_unindexed.collection == "outbox" && google_firestore_field.outbox_body_unindexed.field == "body"
    error_message = "Event bodies are never queried: not indexed."
  }
}

run "gmail_push_timeout_bounded" {
  command = plan

  variables {
    gmail_push_timeout_seconds = 600
  }

  expect_failures = [var.gmail_push_timeout_seconds]
}
