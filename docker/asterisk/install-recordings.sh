#!/bin/sh
# Copies real recordings over the generated prompts (docker/asterisk/sounds/README.md).
#
# The image ships every prompt generated with espeak-ng and sox (`python -m callcenter prompts
# build`) under $SOUNDS/<lang>/callcenter/. Recordings mounted at $RECORDINGS, laid out as
# <lang>/<prompt without callcenter/>.<ext> (tr/main-menu.wav, tr/say/5.gsm), replace the
# generated file of the same prompt in every format, so Asterisk can only pick the recording.
set -eu

RECORDINGS="${ASTERISK_RECORDINGS:-/usr/share/callcenter/recordings}"
SOUNDS="${ASTERISK_SOUNDS_DIR:-/var/lib/asterisk/sounds}"

[ -d "$RECORDINGS" ] || exit 0
count=0
for file in $(cd "$RECORDINGS" && find . -type f \( -name '*.wav' -o -name '*.WAV' \
        -o -name '*.wav16' -o -name '*.gsm' -o -name '*.sln' -o -name '*.sln16' \
        -o -name '*.ulaw' -o -name '*.alaw' -o -name '*.g722' \) | sed 's|^\./||'); do
    lang=${file%%/*}
    name=${file#*/}
    [ "$lang" != "$file" ] || continue # a file outside a language directory
    target="$SOUNDS/$lang/callcenter/$name"
    mkdir -p "$(dirname "$target")"
    rm -f "${target%.*}".*
    cp "$RECORDINGS/$file" "$target"
    count=$((count + 1))
done
echo "install-recordings: $count recording(s) from $RECORDINGS override the generated prompts" >&2
