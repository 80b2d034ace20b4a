variable "project_id" {
  description = "Google Cloud project ID to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lowercase letters, digits and hyphens), not a project number or a domain-scoped ID."
  }
}

variable "region" {
  description = "Region of the functions, the source bucket and (by default) Firestore and the scheduler job."
  type        = string
  default     = "us-central1"
}

variable "scheduler_region" {
  description = "Region of the Cloud Scheduler job. Empty means var.region."
  type        = string
  default     = ""
}

variable "firestore_location" {
  description = "Firestore location ID (a region such as us-central1 or a multi-region such as nam5). Empty means var.region. Cannot be changed after creation."
  type        = string
  default     = ""
}

variable "firestore_deletion_policy" {
  description = "What `destroy` does to the Firestore database: ABANDON (keep it and its data; default) or DELETE."
  type        = string
  default     = "ABANDON"

  validation {
    condition     = contains(["ABANDON", "DELETE"], var.firestore_deletion_policy)
    error_message = "firestore_deletion_policy must be ABANDON or DELETE."
  }
}

variable "name_prefix" {
  description = "Prefix of every named resource (functions, service accounts, secrets, job)."
  type        = string
  default     = "gmail"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.name_prefix))
    error_message = "name_prefix must be 1-12 lowercase letters, digits or hyphens, starting with a letter (it ends up in service account IDs, max 30 chars)."
  }
}

variable "allowed_return_origins" {
  description = "Origins (https://host[:port]) that Authorize's return_to may point at; becomes ALLOWED_RETURN_ORIGINS (also the CORS allow-list). https only: a deployment's frontends are public sites, and the session travels in the return URL. (The functions' own check also accepts http on loopback, for local runs.)"
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.allowed_return_origins : can(regex("^https://[^/?#,@\\s]+$", o))])
    error_message = "Each allowed return origin is https://host[:port], without path, comma, userinfo or spaces; http:// is refused, localhost included: this configuration is a deployment, and the session travels in the return URL."
  }
}

variable "allowed_return_urls" {
  description = "Where the callback may send the browser with the user's session (return_to), becomes ALLOWED_RETURN_URLS: exact URLs (https://app.example.com/oauth/done), or path prefixes ending in /* (https://app.example.com/app/*). An origin alone is not enough: every page of it would receive sessions. Empty refuses every return_to (the callback then answers JSON)."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([for u in var.allowed_return_urls :
      can(regex("^https://[^/?#,@*\\s]+(/[^?#,*\\s]*(\\?[^#,*\\s]*)?|/([^?#,*\\s]*/)?\\*)?$", u))
    ])
    error_message = "Each allowed return URL is https://host[:port]/path[?query] (exact) or https://host[:port]/path/* (a prefix): https only, no fragment (#), userinfo, comma or spaces, and * only as the final /*."
  }
}

variable "oauth_client_id" {
  description = "The OAuth client's id (the client_id of the client JSON you upload), becomes OAUTH_CLIENT_ID. Set, Authorize reads no secret but the app keyset: it needs the id, never the client secret. Empty (until you have created the client), Authorize reads the client JSON to learn the id."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[!-+--~]{0,256}$", var.oauth_client_id))
    error_message = "oauth_client_id is the OAuth client id: visible ASCII without commas or spaces, at most 256 characters."
  }
}

# --- function sizing ---------------------------------------------------------

variable "function_memory" {
  description = "Memory of each function instance (Cloud Run notation, e.g. 512Mi)."
  type        = string
  default     = "512Mi"
}

variable "function_cpu" {
  description = "vCPUs of each function instance. Concurrency above 1 needs at least 1 vCPU."
  type        = string
  default     = "1"
}

variable "function_timeout_seconds" {
  description = "Request timeout of Authorize and OAuthCallback."
  type        = number
  default     = 60

  validation {
    condition     = var.function_timeout_seconds >= 1 && var.function_timeout_seconds <= 3600
    error_message = "function_timeout_seconds must be between 1 and 3600."
  }
}

variable "list_messages_timeout_seconds" {
  description = "Request timeout of ListMessages (the scheduled sweep runs inside one request)."
  type        = number
  default     = 540

  validation {
    condition     = var.list_messages_timeout_seconds >= 1 && var.list_messages_timeout_seconds <= 3600
    error_message = "list_messages_timeout_seconds must be between 1 and 3600."
  }
}

variable "function_concurrency" {
  description = "Concurrent requests per function instance."
  type        = number
  default     = 20

  validation {
    condition     = var.function_concurrency >= 1 && var.function_concurrency <= 1000
    error_message = "function_concurrency must be between 1 and 1000."
  }
}

variable "function_max_instances" {
  description = "Maximum instances per function (caps cost and Gmail/Firestore load)."
  type        = number
  default     = 5

  validation {
    condition     = var.function_max_instances >= 1
    error_message = "function_max_instances must be at least 1."
  }
}

# --- sync (ListMessages' offline sweep) ---------------------------------------

variable "sync_query" {
  description = "Gmail search query of a user's first sync (SYNC_QUERY)."
  type        = string
  default     = "newer_than:30d"
}

variable "sync_concurrency" {
  description = "Users synced at once by one sweep (SYNC_CONCURRENCY)."
  type        = number
  default     = 8

  validation {
    condition     = var.sync_concurrency >= 1 && var.sync_concurrency <= 256
    error_message = "sync_concurrency must be between 1 and 256."
  }
}

variable "sync_deadline_seconds" {
  description = "When a sweep stops (SYNC_DEADLINE, seconds); must be below list_messages_timeout_seconds so the sweep can save checkpoints and answer."
  type        = number
  default     = 480
}

# --- function settings ---------------------------------------------------------
#
# Each becomes one environment variable of the functions (internal/config reads
# and validates them; the ranges below are the same). Left at null, the
# variable is not set at all and the code's own default applies, so the
# defaults live in one place.

variable "oauth_scopes" {
  description = "Scopes Authorize requests (OAUTH_SCOPES, joined with spaces). Default null: OAUTH_SCOPES is left unset and the code's default applies (openid, email, https://www.googleapis.com/auth/gmail.readonly). Must include openid (the callback identifies users by the ID token); keep gmail.readonly or a broader Gmail scope, which ListMessages needs to read mail."
  type        = list(string)
  default     = null

  validation {
    condition = var.oauth_scopes == null ? true : (
      contains(var.oauth_scopes, "openid") &&
      alltrue([for s in var.oauth_scopes : can(regex("^[^\\s,]+$", s))])
    )
    error_message = "oauth_scopes must include openid (the callback identifies users by the ID token), and each scope is one word without spaces or commas."
  }
}

variable "session_ttl_seconds" {
  description = "Lifetime of a frontend session, in seconds, from 60 (1m) to 86400 (24h) (SESSION_TTL). Default null: SESSION_TTL is left unset and the code's default applies (1h)."
  type        = number
  default     = null

  validation {
    condition     = var.session_ttl_seconds == null ? true : (floor(var.session_ttl_seconds) == var.session_ttl_seconds && var.session_ttl_seconds >= 60 && var.session_ttl_seconds <= 86400)
    error_message = "session_ttl_seconds must be a whole number of seconds from 60 (1m) to 86400 (24h)."
  }
}

variable "request_timeout_ms" {
  description = "Deadline of a frontend request (Authorize, OAuthCallback, ListMessages' GET), store calls included, in milliseconds from 100 to 600000 (10m) (REQUEST_TIMEOUT). It must stay below function_timeout_seconds and list_messages_timeout_seconds, so a slow request ends in the app's 503 rather than being cut off by Cloud Run. Default null: REQUEST_TIMEOUT is left unset and the code's default applies (30s)."
  type        = number
  default     = null

  validation {
    condition     = var.request_timeout_ms == null ? true : (floor(var.request_timeout_ms) == var.request_timeout_ms && var.request_timeout_ms >= 100 && var.request_timeout_ms <= 600000)
    error_message = "request_timeout_ms must be a whole number of milliseconds from 100 to 600000 (10m)."
  }
}

variable "outbound_timeout_ms" {
  description = "Deadline of each call to Google (token, revocation, JWKS, Gmail), in milliseconds from 100 to 600000 (10m) (OUTBOUND_TIMEOUT). Default null: OUTBOUND_TIMEOUT is left unset and the code's default applies (10s)."
  type        = number
  default     = null

  validation {
    condition     = var.outbound_timeout_ms == null ? true : (floor(var.outbound_timeout_ms) == var.outbound_timeout_ms && var.outbound_timeout_ms >= 100 && var.outbound_timeout_ms <= 600000)
    error_message = "outbound_timeout_ms must be a whole number of milliseconds from 100 to 600000 (10m)."
  }
}

variable "gmail_quota_user_per_min" {
  description = "Gmail quota units per minute a function instance spends on one user's mailbox (listing and sync), from 10 to 1000000000 (GMAIL_QUOTA_USER_PER_MIN); match it to the project's per-user Gmail quota. Default null: GMAIL_QUOTA_USER_PER_MIN is left unset and the code's default applies (6000, Gmail's per-user limit for projects created since 2026-05-01; a project still on the older limits sets 15000)."
  type        = number
  default     = null

  validation {
    condition     = var.gmail_quota_user_per_min == null ? true : (floor(var.gmail_quota_user_per_min) == var.gmail_quota_user_per_min && var.gmail_quota_user_per_min >= 10 && var.gmail_quota_user_per_min <= 1000000000)
    error_message = "gmail_quota_user_per_min must be a whole number of quota units per minute from 10 to 1000000000."
  }
}

variable "gmail_quota_project_per_min" {
  description = "Gmail quota units per minute a function instance spends in all (one bucket shared by listing and sync), from 10 to 1000000000 (GMAIL_QUOTA_PROJECT_PER_MIN); match it to the project's Gmail quota divided among the instances that may run at once. Default null: GMAIL_QUOTA_PROJECT_PER_MIN is left unset and the code's default applies (1200000, Gmail's default per-project limit)."
  type        = number
  default     = null

  validation {
    condition     = var.gmail_quota_project_per_min == null ? true : (floor(var.gmail_quota_project_per_min) == var.gmail_quota_project_per_min && var.gmail_quota_project_per_min >= 10 && var.gmail_quota_project_per_min <= 1000000000)
    error_message = "gmail_quota_project_per_min must be a whole number of quota units per minute from 10 to 1000000000."
  }
}

variable "gmail_quota_project_per_day" {
  description = "The project's daily Gmail billing threshold in quota units, from 1000 to 1000000000000 (GMAIL_QUOTA_PROJECT_PER_DAY): past 90 % of it the sweep defers what can wait (the older mail of first syncs) until the next UTC day, and says so in its summary and logs. Default null: GMAIL_QUOTA_PROJECT_PER_DAY is left unset and the code's default applies (80000000, Google's daily billing threshold per project since 2026-05-01)."
  type        = number
  default     = null

  validation {
    condition     = var.gmail_quota_project_per_day == null ? true : (floor(var.gmail_quota_project_per_day) == var.gmail_quota_project_per_day && var.gmail_quota_project_per_day >= 1000 && var.gmail_quota_project_per_day <= 1000000000000)
    error_message = "gmail_quota_project_per_day must be a whole number of quota units per day from 1000 to 1000000000000."
  }
}

# --- scheduler -----------------------------------------------------------------

variable "schedule" {
  description = "Cron schedule of the sync job (Cloud Scheduler syntax)."
  type        = string
  default     = "0 * * * *"
}

variable "schedule_time_zone" {
  description = "Time zone of the schedule (tz database name)."
  type        = string
  default     = "Etc/UTC"
}

# --- keyset --------------------------------------------------------------------

variable "app_keys_version" {
  description = "Generation of the Terraform-generated app keyset. Bumping it writes a NEW keyset version with fresh keys only: stored refresh tokens become unreadable (users must consent again) and sessions end. See README for rotating without that."
  type        = number
  default     = 1

  validation {
    condition     = var.app_keys_version >= 1 && floor(var.app_keys_version) == var.app_keys_version
    error_message = "app_keys_version must be a whole number >= 1."
  }
}

# --- push -------------------------------------------------------------------

variable "gmail_push_timeout_seconds" {
  description = "Timeout of GmailPush: one user's sync under the sync lease (5 minutes); a longer first sync continues in the next message."
  type        = number
  default     = 300

  validation {
    condition     = var.gmail_push_timeout_seconds >= 60 && var.gmail_push_timeout_seconds <= 540
    error_message = "gmail_push_timeout_seconds must be between 60 and 540 (the most an event-driven function may run)."
  }
}

variable "push_watch_renewal_hours" {
  description = "PUSH_WATCH_RENEWAL in hours: how old a Gmail watch gets before the sweep renews it (Gmail's watches last 7 days; Google recommends daily). Null keeps the code's default, 24."
  type        = number
  default     = null

  validation {
    condition     = var.push_watch_renewal_hours == null ? true : var.push_watch_renewal_hours >= 1 && var.push_watch_renewal_hours <= 144 && floor(var.push_watch_renewal_hours) == var.push_watch_renewal_hours
    error_message = "push_watch_renewal_hours must be a whole number of hours from 1 to 144."
  }
}

variable "push_resync_after_minutes" {
  description = "PUSH_RESYNC_AFTER in minutes: how long a mailbox may go without a sync before the sweep syncs it anyway (lost notifications). Null keeps the code's default, 360."
  type        = number
  default     = null

  validation {
    condition     = var.push_resync_after_minutes == null ? true : var.push_resync_after_minutes >= 10 && var.push_resync_after_minutes <= 10080 && floor(var.push_resync_after_minutes) == var.push_resync_after_minutes
    error_message = "push_resync_after_minutes must be a whole number of minutes from 10 to 10080."
  }
}
