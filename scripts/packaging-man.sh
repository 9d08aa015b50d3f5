#!/bin/sh
# Converts a man page written in Markdown (docs/NAME.SECTION.md) to roff with
# go-md2man (Debian package go-md2man):
#
#   packaging-man.sh SOURCE.md OUTPUT VERSION [DATE]
#
# The source starts with a line "# NAME(SECTION)", then "## NAME", "## SYNOPSIS", ...
# sections ("##" -> .SH, "###" -> .SS). That first line becomes the .TH title;
# DATE defaults to the last commit's date (reproducible builds), else today.
# The result is checked with man(1)'s warnings, as lintian does.
set -eu
src=$1 out=$2 version=$3 date=${4:-}

if ! command -v go-md2man >/dev/null 2>&1; then
  echo "packaging-man: go-md2man is not installed (apt-get install go-md2man, or make deps)" >&2
  exit 1
fi
first=$(head -n 1 "$src")
name=$(printf '%s\n' "$first" | sed -n 's/^# \([A-Za-z0-9._-]*\)(\([1-9][a-z]*\))$/\1/p')
section=$(printf '%s\n' "$first" | sed -n 's/^# \([A-Za-z0-9._-]*\)(\([1-9][a-z]*\))$/\2/p')
if [ -z "$name" ] || [ -z "$section" ]; then
  echo "packaging-man: $src must start with a line '# NAME(SECTION)'" >&2
  exit 1
fi
if [ -z "$date" ]; then
  date=$(git log -1 --format=%cd --date=format:'%B %Y' 2>/dev/null || LC_ALL=C date -u +'%B %Y')
fi
case $section in
  1) manual="User Commands" ;;
  5) manual="File Formats" ;;
  8) manual="System Administration" ;;
  *) manual="manifold" ;;
esac
upper=$(printf '%s' "$name" | tr 'a-z' 'A-Z')

mkdir -p "$(dirname "$out")"
{
  printf '%% %s %s "%s" "manifold %s" "%s"\n\n' "$upper" "$section" "$date" "$version" "$manual"
  tail -n +2 "$src"
} | go-md2man > "$out.tmp"
# go-md2man leaves empty lines (a blank line is a roff paragraph break, and lintian
# asks for none): drop them. The NAME line must read "name \- description" for
# whatis/apropos (lexgrog): no .PP before it, "\-" as the separator.
awk '/^$/ { next }
  /^\.SH NAME$/ { name = 1; print; next }
  name && /^\.PP$/ { next }
  name { sub(/ (—|-|\\-) /, " \\- "); name = 0 }
  { print }' "$out.tmp" > "$out"
rm -f "$out.tmp"
if command -v lexgrog >/dev/null 2>&1 && ! lexgrog "$out" >/dev/null; then
  echo "packaging-man: $out: lexgrog cannot parse the NAME section (write '## NAME' then 'name — description')" >&2
  exit 1
fi

if command -v man >/dev/null 2>&1; then
  warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$out" 2>&1 >/dev/null || true)
  if [ -n "$warnings" ]; then
    echo "packaging-man: $out: man reports:" >&2
    printf '%s\n' "$warnings" >&2
    exit 1
  fi
fi
