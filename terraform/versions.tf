# Provider and CLI versions.
#
# OpenTofu >= 1.11 or Terraform >= 1.11 is required: the app keyset is generated
# by an *ephemeral* random_bytes resource and written through the *write-only*
# secret_data_wo attribute, so the key material never lands in the state file
# (see secrets.tf).
terraform {
  required_version = ">= 1.11.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.8"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.9"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
