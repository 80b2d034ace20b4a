#!/usr/bin/env bash
# Regenerates testdata/provider-schemas.json.gz from the full schemas of the
# google, archive and random providers, keeping only the provider configs and
# the resource, data source and ephemeral resource types that ../*.tf use,
# without descriptions. Run it after using a new resource type. Needs jq.
#
#   trim-schemas.sh FULL_SCHEMAS.json.gz
#
# FULL_SCHEMAS.json.gz is the gzipped output of `tofu providers schema -json`
# (or `terraform providers schema -json`), run in an initialised terraform/
# with the real providers (`tofu init` with registry access).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tfdir="$(dirname "$here")"
if [[ $# -ne 1 || ! -f "$1" ]]; then
  echo "usage: $0 FULL_SCHEMAS.json.gz (gzipped \`tofu providers schema -json\` output of terraform/)" >&2
  exit 2
fi
src="$1"

types() { # kind -> JSON array of the types of that kind used in ../*.tf
  sed -n "s/^$1 \"\([a-z0-9_]*\)\" .*/\1/p" "$tfdir"/*.tf | sort -u | jq -R . | jq -sc .
}

zcat "$src" | jq -c \
  --argjson res "$(types resource)" \
  --argjson data "$(types data)" \
  --argjson eph "$(types ephemeral)" '
  # Attributes may be *named* description (an object); only drop the strings.
  def strip: walk(if type == "object" then
      (if (.description | type) == "string" then del(.description) else . end) | del(.description_kind)
    else . end);
  def pick($keep): with_entries(select(.key as $k | $keep | index($k)));
  .provider_schemas |= with_entries(.value |= {
      provider: .provider,
      resource_schemas: ((.resource_schemas // {}) | pick($res)),
      data_source_schemas: ((.data_source_schemas // {}) | pick($data)),
      ephemeral_resource_schemas: ((.ephemeral_resource_schemas // {}) | pick($eph))
    })
  | strip' | gzip -n -9 > "$here/testdata/provider-schemas.json.gz"

# Every type used must be present, or the stand-in provider would reject it.
zcat "$here/testdata/provider-schemas.json.gz" | jq -r '
  [.provider_schemas[] | (.resource_schemas, .data_source_schemas, .ephemeral_resource_schemas) | keys[]] | .[]' |
  sort > "$here/testdata/.have"
{ types resource; types data; types ephemeral; } | jq -r '.[]' | sort -u > "$here/testdata/.want"
missing="$(comm -13 "$here/testdata/.have" "$here/testdata/.want")"
rm -f "$here/testdata/.have" "$here/testdata/.want"
if [[ -n "$missing" ]]; then
  echo "trim-schemas: not in $src: $missing" >&2
  exit 1
fi
echo "trim-schemas: wrote $here/testdata/provider-schemas.json.gz" >&2
