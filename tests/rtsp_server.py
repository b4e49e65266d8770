"""A real RTSP server for the rtsp tests: GStreamer gst-rtsp-server, bound to 127.0.0.1.

Run with Debian's python (python3-gi is built for it, not for the venv):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --play SRC.mp4 --record REC.mkv

- PLAY  rtsp://127.0.0.1:PORT/in   loops SRC (an H.264 mp4) in real time (a "camera")
- RECORD rtsp://127.0.0.1:PORT/out  accepts a published H.264 stream and writes it to REC
  (matroska)

Prints "ready PORT" on stdout once listening; exits on SIGTERM/SIGINT.
``--probe`` only checks that gi and GstRtspServer import (exit 0) for skip decisions.
"""

import argparse
import signal
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--play", help="H.264 mp4 served at /in")
    ap.add_argument("--record", help="mkv written from RECORD /out")
    ap.add_argument("--probe", action="store_true")
    a = ap.parse_args()

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    if a.probe:
        Gst.init(None)
        need = ("filesrc", "qtdemux", "h264parse", "rtph264pay", "rtph264depay", "matroskamux", "filesink")
        return 0 if all(Gst.ElementFactory.find(n) for n in need) else 3

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    mounts = server.get_mount_points()

    if a.play:
        play = GstRtspServer.RTSPMediaFactory()
        # multifilesrc loop=true would need a parser per loop; a looping decodebin is heavier.
        # Serve the clip once per client session; the tests use clips longer than they read.
        play.set_launch(f"( filesrc location={a.play} ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=1 )")
        play.set_shared(True)
        mounts.add_factory("/in", play)

    if a.record:
        rec = GstRtspServer.RTSPMediaFactory()
        rec.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
        rec.set_launch(f"( rtph264depay name=depay0 ! h264parse ! matroskamux ! filesink location={a.record} )")
        rec.set_shared(False)
        mounts.add_factory("/out", rec)

    if server.attach(None) == 0:
        print(f"error: cannot listen on 127.0.0.1:{a.port}", file=sys.stderr, flush=True)
        return 2
    loop = GLib.MainLoop()

    def stop(*_):
        loop.quit()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    GLib.timeout_add(200, lambda: True)  # wake the loop so Python signal handlers run
    print(f"ready {a.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
