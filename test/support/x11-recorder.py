#!/usr/bin/python3
"""A focused X client that records what it receives (python3-xlib, Debian): it maps a window, takes
the input focus, prints "ready", then one JSON line per KeyPress: the keycode, the modifier state,
the keysym the server's mapping gives for that keycode and state, and the character."""
import json
import sys

from Xlib import X, display

d = display.Display()
screen = d.screen()
window = screen.root.create_window(0, 0, 200, 100, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
                                   event_mask=X.KeyPressMask | X.KeyReleaseMask | X.StructureNotifyMask | X.FocusChangeMask)
window.map()
d.flush()
while True:
    event = d.next_event()
    if event.type == X.MapNotify:
        break
window.set_input_focus(X.RevertToParent, X.CurrentTime)
d.sync()
print("ready", flush=True)
while True:
    event = d.next_event()
    if event.type != X.KeyPress:
        continue
    # Column 1 of the core mapping is the Shift level (X11 protocol, "Keyboards").
    # Asked afresh each time: the test changes the layout while this client runs.
    keysym = d.get_keyboard_mapping(event.detail, 1)[0][1 if event.state & X.ShiftMask else 0]
    char = chr(keysym) if 0x20 <= keysym <= 0x7e else None
    print(json.dumps({"keycode": event.detail, "state": event.state, "keysym": keysym, "char": char}), flush=True)
