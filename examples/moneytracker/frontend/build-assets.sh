#!/bin/sh
# build-assets.sh SRC OUT: make the static site the frontend image serves.
#  1. copy SRC to OUT;
#  2. fingerprint OUT/assets/*.js|*.css as NAME.<first 12 hex of sha256>.EXT and rewrite
#     index.html to reference the new names (nginx marks only those immutable);
#  3. precompress every text file next to itself: FILE.gz (gzip -9 -n) and FILE.br (brotli -q 11),
#     for nginx's gzip_static / brotli_static.
# Needs: sha256sum, gzip, brotli, sed (Debian: coreutils gzip brotli sed).
set -eu

src=${1:?usage: build-assets.sh SRC OUT}
out=${2:?usage: build-assets.sh SRC OUT}

rm -rf "$out"
mkdir -p "$out"
cp -R "$src"/. "$out"/

for file in "$out"/assets/*.js "$out"/assets/*.css; do
  [ -f "$file" ] || continue
  base=$(basename "$file")
  name=${base%.*}
  ext=${base##*.}
  hash=$(sha256sum "$file" | cut -c1-12)
  fingerprinted="$name.$hash.$ext"
  mv "$file" "$out/assets/$fingerprinted"
  sed -i "s#\"/assets/$name\\.$ext\"#\"/assets/$fingerprinted\"#g" "$out/index.html"
  if ! grep -q "\"/assets/$fingerprinted\"" "$out/index.html"; then
    echo "build-assets: index.html does not reference /assets/$base" >&2
    exit 1
  fi
  echo "build-assets: $base -> assets/$fingerprinted"
done

find "$out" -type f \( -name '*.html' -o -name '*.js' -o -name '*.css' -o -name '*.svg' \
  -o -name '*.json' -o -name '*.txt' -o -name '*.map' \) | while read -r file; do
  gzip -9 -n -k -f "$file"
  brotli -q 11 -f -o "$file.br" "$file"
done
chmod -R a+rX "$out"
echo "build-assets: $(find "$out" -type f | wc -l) files in $out"
