#!/bin/bash
# Packages one 216p rung and 24 kb/s AAC with the FFmpeg CLI in a chosen segment layout, to time
# the first picture with bench/first_frame.py. Usage: SRC=FILE layout_probe.sh OUT INIT_TIME KEYFRAME_TIMES
# $1 out, $2 init_time (0 = none), $3 keyframe list
out=$1; it=$2; kf=$3
src=${SRC:?set SRC to a lecture file}
rm -rf $out; mkdir -p $out/v216 $out/a24
ffmpeg -v error -y -i $src -an -vf scale=384:216,fps=10 -c:v libx264 -profile:v high -crf 26 -maxrate 32k -bufsize 48k -g 200 -keyint_min 200 -sc_threshold 0 -force_key_frames "$kf" \
  -f hls -hls_time 6 -hls_init_time $it -hls_list_size 1 -hls_segment_type fmp4 -hls_segment_filename $out/v216/seg_%05d.m4s $out/v216/tmp.m3u8
ffmpeg -v error -y -i $src -vn -ac 1 -c:a aac -b:a 24k \
  -f hls -hls_time 6 -hls_init_time $it -hls_list_size 1 -hls_segment_type fmp4 -hls_segment_filename $out/a24/seg_%05d.m4s $out/a24/tmp.m3u8
python3 - $out <<'P'
import sys, subprocess, os, glob
out = sys.argv[1]
for r in ("v216", "a24"):
    d = f"{out}/{r}"; lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:6", "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS", '#EXT-X-MAP:URI="init.mp4"']
    durs = []
    for s in sorted(glob.glob(f"{d}/seg_*.m4s")):
        data = open(f"{d}/init.mp4", "rb").read() + open(s, "rb").read()
        p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "packet=duration_time", "-of", "csv=p=0", "-"], input=data, capture_output=True)
        dur = sum(float(x) for x in p.stdout.decode().split() if x and x != "N/A")
        durs.append(dur); lines += [f"#EXTINF:{dur:.6f},", os.path.basename(s)]
    lines.append("#EXT-X-ENDLIST")
    open(f"{d}/index.m3u8", "w").write("\n".join(lines) + "\n")
    print(r, [round(x, 2) for x in durs[:5]], [os.path.getsize(s) for s in sorted(glob.glob(f"{d}/seg_*.m4s"))[:5]])
P
cat > $out/master.m3u8 <<M
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a24",NAME="a24",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="1",URI="a24/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=60000,CODECS="avc1.64000C,mp4a.40.2",RESOLUTION=384x216,AUDIO="a24"
v216/index.m3u8
M
