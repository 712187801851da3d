#!/bin/sh
# gen-video.sh rebuilds static/mock-video.mp4, the clip every completed mock
# job points at. Run it from anywhere: it writes next to itself.
#
# Why these settings:
#   - VP9 video + Opus audio in MP4: Debian's Chromium ships without the
#     proprietary H.264/AAC decoders, so H.264 would show a broken player
#     there; VP9 and Opus play in every current browser.
#   - -movflags +faststart puts the moov box first, so playback starts before
#     the whole file has arrived.
#   - 5 s of testsrc2 at 640x360 and ~120 kbit/s keeps the file well under
#     150 KB, small enough to embed in the binary.
#   - -row-mt/-deadline/-cpu-used only speed up encoding; -g 50 gives a
#     keyframe every 2 s so seeking works.
#   - -map_metadata -1 and -fflags +bitexact keep the output free of encoder
#     version strings and creation times, so re-running it on the same
#     ffmpeg produces the same bytes.
set -eu
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc2=size=640x360:rate=25" \
	-f lavfi -i "sine=frequency=440:sample_rate=48000" \
	-t 5 \
	-c:v libvpx-vp9 -b:v 120k -pix_fmt yuv420p -g 50 -row-mt 1 -deadline good -cpu-used 4 \
	-c:a libopus -b:a 24k -ac 1 \
	-map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
	-movflags +faststart \
	static/mock-video.mp4
