#!/bin/sh
# Renders Asterisk's configuration and starts Asterisk in the foreground.
#
# The templates (asterisk_conf/ in the repository, /usr/share/callcenter/asterisk-conf in the
# image) hold no secrets: every {{NAME}} is replaced by the environment variable NAME, or by
# the content of the file named by NAME_FILE (Docker secrets). A value that is missing stops
# the start and is named. A template whose first line is "; optional: NAME" is rendered only
# when NAME has a value (the SIP trunk). With --render-only it renders and exits (tests).
set -eu

SRC="${ASTERISK_CONF_TEMPLATES:-/usr/share/callcenter/asterisk-conf}"
DST="${ASTERISK_CONF_DIR:-/etc/asterisk}"

fail() {
    echo "asterisk-entrypoint: $*" >&2
    exit 1
}

# The value of $1: the file named by $1_FILE, else the variable $1 (names are [A-Z0-9_]).
value() {
    eval "file=\${${1}_FILE:-}"
    if [ -n "$file" ]; then
        [ -r "$file" ] || fail "$1_FILE names $file, which cannot be read"
        cat "$file"
    else
        eval "printf '%s' \"\${${1}:-}\""
    fi
}

# An awk function: CODE = the line up to its first unescaped ";", COMMENT = the rest.
SPLIT_COMMENT='function split_comment(l) {
    CODE = l; COMMENT = ""
    if (match(l, /(^|[^\\]);/)) {
        cut = RSTART + RLENGTH - 2
        CODE = substr(l, 1, cut); COMMENT = substr(l, cut + 1)
    }
}'

# Prints its input without comments.
code_only() {
    awk "$SPLIT_COMMENT"'{ split_comment($0); print CODE }'
}

render() {
    template="$1"
    target="$DST/$(basename "$template")"
    optional=$(sed -n '1s/^; optional: \([A-Z0-9_]*\).*/\1/p' "$template")
    if [ -n "$optional" ] && [ -z "$(value "$optional")" ]; then
        rm -f "$target"
        return
    fi
    # Placeholders count only outside comments: a comment never needs (nor shows) a value.
    for name in $(code_only < "$template" | grep -o '{{[A-Z0-9_]*}}' | tr -d '{}' | sort -u); do
        v=$(value "$name")
        [ -n "$v" ] || fail "$(basename "$template") needs $name (set $name or ${name}_FILE)"
        case "$v" in
            *"
"*) fail "$name must be one line" ;;
        esac
        # A ";" starts a comment in Asterisk's files: escape it.
        v=$(printf '%s' "$v" | sed 's/;/\\;/g')
        export "CC_VALUE_$name=$v"
    done
    # awk reads the values from its environment, so no character in them is special here.
    # Only the part of a line before its comment is filled in: a secret never lands in a
    # comment (where a later edit could expose it, or a ";" in it would hide the line).
    awk "$SPLIT_COMMENT"'{
        split_comment($0)
        out = ""; line = CODE
        while (match(line, /[{][{][A-Z0-9_]+[}][}]/)) {
            name = substr(line, RSTART + 2, RLENGTH - 4)
            out = out substr(line, 1, RSTART - 1) ENVIRON["CC_VALUE_" name]
            line = substr(line, RSTART + RLENGTH)
        }
        print out line COMMENT
    }' "$template" > "$target.tmp"
    chmod 0640 "$target.tmp"
    mv "$target.tmp" "$target"
}

[ -d "$SRC" ] || fail "no templates in $SRC"
mkdir -p "$DST"
for template in "$SRC"/*.conf; do
    render "$template"
done

if [ "${1:-}" = "--render-only" ]; then
    exit 0
fi
mkdir -p /var/log/asterisk/cdr-custom /var/log/asterisk/cel-custom
# Real recordings, where mounted, replace the generated prompts (install-recordings.sh).
/usr/local/bin/install-recordings
exec /usr/sbin/asterisk -f "$@"
