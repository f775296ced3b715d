#!/usr/bin/env bash
# The dashboard's vendored chart library: Apache ECharts, pinned, checked and committed under
# services/ingress/dashboard/vendor/echarts-<version>/ (its ES module build, LICENSE and NOTICE),
# so the ingress serves the page with no build step and no network at run time.
#
#   scripts/fetch_dashboard_assets.sh           fetch the pinned release with npm and install it
#   scripts/fetch_dashboard_assets.sh --check   only verify the committed files (no network)
#
# To upgrade: change version and the four sums below (the tarball's sha512 is npm's "integrity";
# the others are sha256 of the extracted files), run the script, point the page's import
# (services/ingress/dashboard/charts.js) at the new folder, and delete the old one.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version=6.1.0
integrity="sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA=="
# file in the vendored folder, its sha256, and where it is in the npm package
files=(
    "echarts.esm.min.js 28515f26aa57f87eb1e4ed4eb446927eaf329b5f5e02b4bfd4b0264fea40d1da package/dist/echarts.esm.min.js"
    "LICENSE 634293835b43a6dd2094fa39182a3d9a6b9ca43b7fdb9ac354e8037af2a3093a package/LICENSE"
    "NOTICE d491d358344f842685c1b1585970999db65fe30ecf7ef3867af8814f4016c016 package/NOTICE"
    "LICENSE-d3 e1211892da0b0e0585b7aebe8f98c1274fba15bafe47fa1f4ee8a7a502c06304 package/licenses/LICENSE-d3"
)
dest="$repo/services/ingress/dashboard/vendor/echarts-$version"

say() { printf 'fetch_dashboard_assets: %s\n' "$*" >&2; }
die() { printf 'fetch_dashboard_assets: error: %s\n' "$*" >&2; exit 1; }

verify() {  # verify <folder> <path-field>: every file's sha256 matches its pin
    local folder=$1 field=$2 entry name sum path file
    for entry in "${files[@]}"; do
        read -r name sum path <<<"$entry"
        if [[ $field == vendored ]]; then file="$folder/$name"; else file="$folder/$path"; fi
        [[ -f "$file" ]] || die "missing $file"
        [[ "$(sha256sum "$file" | cut -d' ' -f1)" == "$sum" ]] || die "checksum mismatch: $file"
    done
}

if [[ "${1:-}" == "--check" ]]; then
    verify "$dest" vendored
    say "echarts $version in ${dest#"$repo"/} matches its pinned checksums"
    exit 0
fi

command -v npm >/dev/null || die "npm not found: Node.js's npm fetches the pinned package"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "npm pack echarts@$version"
(cd "$work" && npm pack --silent "echarts@$version" >/dev/null) || die "npm pack failed"
tarball="$work/echarts-$version.tgz"
# npm checks a tarball against the registry's own record; this checks it against the pin.
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[[ "$actual" == "$integrity" ]] || die "the tarball's integrity $actual is not the pinned one"
tar -xzf "$tarball" -C "$work"
verify "$work" package
mkdir -p "$dest"
for entry in "${files[@]}"; do
    read -r name _ path <<<"$entry"
    cp "$work/$path" "$dest/$name"
done
verify "$dest" vendored
say "installed echarts $version into ${dest#"$repo"/}"
