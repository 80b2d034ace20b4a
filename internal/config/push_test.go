package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/config"
)

// pushDefaults is the Push block of a configuration that sets none of it.
var pushDefaults = config.Push{WatchRenewal: 24 * time.Hour, ResyncAfter: 6 * time.Hour}

func TestLoadPush(t *testing.T) {
	m := minimal()
	m["PUSH_TOPIC"] = "projects/proj-1/topics/gmail-notifications"
	m["EVENTS_TOPIC"] = " projects/proj-1/topics/gmail-events "
	m["PUSH_WATCH_RENEWAL"] = "12h"
	m["PUSH_RESYNC_AFTER"] = "90m"
	m["PUBSUB_EMULATOR_HOST"] = "127.0.0.1:8085"
	got, err := config.Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Push{Topic: "projects/proj-1/topics/gmail-notifications", EventsTopic: "projects/proj-1/topics/gmail-events",
		WatchRenewal: 12 * time.Hour, ResyncAfter: 90 * time.Minute, EmulatorHost: "127.0.0.1:8085"}
	if diff := cmp.Diff(want, got.Push); diff != "" {
		t.Errorf("Push (-want +got):\n%s", diff)
	}
}

func TestLoadPushProblems(t *testing.T) {
	m := minimal()
	m["PUSH_TOPIC"] = "gmail-notifications"
	m["EVENTS_TOPIC"] = "projects/p/subscriptions/x"
	m["PUSH_WATCH_RENEWAL"] = "7d"
	m["PUSH_RESYNC_AFTER"] = "1m"
	_, err := config.Load(env(m))
	got := strings.Join(problems(t, err), "\n")
	for _, want := range []string{
		`PUSH_TOPIC must be a Pub/Sub topic name projects/PROJECT/topics/TOPIC, got "gmail-notifications"`,
		`EVENTS_TOPIC must be a Pub/Sub topic name`,
		`PUSH_WATCH_RENEWAL must be a Go duration from 1h to 144h, got "7d"`,
		`PUSH_RESYNC_AFTER must be a Go duration from 10m to 168h, got "1m"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nwant one containing %q", got, want)
		}
	}

	m = minimal()
	m["PUSH_TOPIC"] = "projects/proj-1/topics/same"
	m["EVENTS_TOPIC"] = "projects/proj-1/topics/same"
	_, err = config.Load(env(m))
	if got := strings.Join(problems(t, err), "\n"); !strings.Contains(got, "must be different topics") {
		t.Errorf("problems for one topic twice: %s", got)
	}
}
