#!/usr/bin/python3
"""A focused X client that records what it receives (python3-xlib, Debian): it maps a window, takes
the input focus, prints "ready", then one JSON line per KeyPress: the keycode, the modifier state,
the keysym the server's mapping gives for that keycode and state, and the character."""
import ctypes
import json
import sys

from Xlib import X, display

d = display.Display()

# python3-xlib speaks the core protocol only; libX11 (ctypes) does the XKB lookup, on a connection
# of its own opened for each key, so a layout changed meanwhile is the one used. Without libX11,
# the core mapping's Shift column (X11 protocol, "Keyboards").
try:
    libx11 = ctypes.CDLL("libX11.so.6")
    libx11.XOpenDisplay.restype = ctypes.c_void_p
except OSError:
    libx11 = None


def xkb_keysym(keycode, state):
    if libx11:
        xkb_display = libx11.XOpenDisplay(None)
        if xkb_display:
            try:
                mods, sym = ctypes.c_uint(), ctypes.c_ulong()
                if libx11.XkbLookupKeySym(ctypes.c_void_p(xkb_display), ctypes.c_ubyte(keycode), ctypes.c_uint(state), ctypes.byref(mods), ctypes.byref(sym)):
                    return sym.value
            finally:
                libx11.XCloseDisplay(ctypes.c_void_p(xkb_display))
    return d.get_keyboard_mapping(keycode, 1)[0][1 if state & X.ShiftMask else 0]


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
    # The keysym an application gets for this keycode and state, as Xlib's XKB lookup gives it
    # (the key's type decides the level: Caps Lock flips it on some layouts), asked afresh each
    # time: the test changes the layout while this client runs.
    keysym = xkb_keysym(event.detail, event.state)
    char = chr(keysym) if 0x20 <= keysym <= 0x7e else None
    print(json.dumps({"keycode": event.detail, "state": event.state, "keysym": keysym, "char": char}), flush=True)
