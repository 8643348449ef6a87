#!/usr/bin/python3
"""playbin3 as an application would run it, with hlsdemux2's `low-watermark-time` set (the buffered
media at which it reports 100 % and the clock starts; 0, its default, takes 1.5 average segment
durations). Prints what `gst-launch-1.0 -v playbin3 ...` with fake sinks prints, so that
players.py reads both alike:

    gst_app.py URL SECONDS LOW_WATERMARK_SECONDS

Runs with Debian's python3 and its GObject bindings (python3-gi, gir1.2-gstreamer-1.0).
"""
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    url, seconds, low = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    Gst.init(None)
    play = Gst.ElementFactory.make("playbin3")
    play.set_property("uri", url)
    sinks = {}
    for name in ("vs", "as"):
        sink = Gst.ElementFactory.make("fakesink", name)
        sink.set_property("sync", True)
        sink.set_property("signal-handoffs", True)
        sinks[name] = sink
    play.set_property("video-sink", sinks["vs"])
    play.set_property("audio-sink", sinks["as"])

    def handoff(sink, buf, pad, name):
        caps = pad.get_current_caps()
        if name == "vs" and caps is not None:
            s = caps.get_structure(0)
            size = (s.get_value("width"), s.get_value("height"))
            if getattr(handoff, "size", None) != size:
                handoff.size = size
                print(f"/GstPipeline:pipeline0/GstFakeSink:vs.GstPad:sink: caps = video/x-raw, width=(int){size[0]}, height=(int){size[1]}", flush=True)
                print(f"(vs:sink) E (type: caps, width=(int){size[0]}, height=(int){size[1]})", flush=True)
        pts = buf.pts
        if pts != Gst.CLOCK_TIME_NONE:
            t = pts / Gst.SECOND
            print(f"last-message = chain   ******* ({name}:sink) (1 bytes, pts: {int(t // 3600)}:{int(t % 3600 // 60):02d}:{t % 60:012.9f})", flush=True)

    for name, sink in sinks.items():
        sink.connect("handoff", handoff, name)

    def added(bin_, sub, element):
        factory = element.get_factory()
        if factory is not None and factory.get_name() == "hlsdemux2" and low > 0:
            element.set_property("low-watermark-time", int(low * Gst.SECOND))

    play.connect("deep-element-added", added)
    loop = GLib.MainLoop()
    state = {"buffering": False, "prerolled": False}

    def on_message(bus, msg):
        if msg.type == Gst.MessageType.BUFFERING:
            percent = msg.parse_buffering()
            if percent < 100 and not state["buffering"]:
                state["buffering"] = True
                play.set_state(Gst.State.PAUSED)
            elif percent >= 100 and state["buffering"]:
                state["buffering"] = False
                play.set_state(Gst.State.PLAYING)
        elif msg.type == Gst.MessageType.ASYNC_DONE and not state["prerolled"]:
            state["prerolled"] = True
            print("Pipeline is PREROLLED ...", flush=True)
        elif msg.type == Gst.MessageType.EOS:
            print("Got EOS from element \"pipeline0\".", flush=True)
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            err, _ = msg.parse_error()
            print(f"ERROR: {err.message}", flush=True)
            loop.quit()

    bus = play.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    play.set_state(Gst.State.PLAYING)
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    start = time.time()
    loop.run()
    play.set_state(Gst.State.NULL)
    return 0 if time.time() - start > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
