#!/usr/bin/env bash
# Captures docs/tray-menu.png: the keytap tray icon and its open menu in a real StatusNotifierItem
# host (status-notifier-watcher + gtk-sni-tray-standalone) on Xvfb, with a private session bus and
# the demo tray (test/tray/demo-tray.ts: two keys' sections). Usage: test/tray/screenshot.sh [OUT]
# Debian: apt-get install dbus libglib2.0-bin xvfb xdotool imagemagick \
#           haskell-status-notifier-item-utils haskell-gtk-sni-tray-utils
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-docs/tray-menu.png}
BAR=32

for tool in Xvfb dbus-daemon gdbus status-notifier-watcher gtk-sni-tray-standalone xdotool import; do
  command -v "$tool" >/dev/null || { echo "screenshot.sh: $tool is not installed" >&2; exit 2; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # wait_for DESCRIPTION COMMAND…: up to 10 s
  local what=$1; shift
  for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "screenshot.sh: timed out waiting for $what" >&2
  exit 1
}

# Xvfb picks a free display and writes its number to fd 3.
Xvfb -displayfd 3 -screen 0 600x360x24 -nolisten tcp 3>"$WORK/display" 2>/dev/null &
PIDS+=($!)
wait_for "Xvfb" test -s "$WORK/display"
export DISPLAY=":$(cat "$WORK/display")"

# GTK would start an accessibility bus of its own and chat about it on stderr.
export NO_AT_BRIDGE=1
export DBUS_SESSION_BUS_ADDRESS="unix:path=$WORK/bus"
dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --nofork 2>/dev/null &
PIDS+=($!)
wait_for "the session bus" gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.GetId

status-notifier-watcher >/dev/null 2>&1 &
PIDS+=($!)
wait_for "the StatusNotifierWatcher" gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
  --method org.freedesktop.DBus.GetNameOwner org.kde.StatusNotifierWatcher

gtk-sni-tray-standalone --top --beginning --size "$BAR" --color '#3c3f41' >/dev/null 2>&1 &
PIDS+=($!)

node --import tsx test/tray/demo-tray.ts >"$WORK/demo.out" 2>"$WORK/demo.err" &
PIDS+=($!)
wait_for "the demo tray to be shown" grep -q 'status shown' "$WORK/demo.out"
sleep 1 # the host draws the icon

# Open the menu with a click on the icon, then walk to the submenu with the keyboard (coordinates
# of menu items would depend on fonts): six enabled items down is "Default account…", Right opens it.
xdotool mousemove $((BAR / 2)) $((BAR / 2)) click 1
sleep 1
xdotool key Down Down Down Down Down Down Right
sleep 1

mkdir -p "$(dirname "$OUT")"
import -window root "$OUT"
echo "wrote $OUT"
