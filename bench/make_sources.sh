#!/usr/bin/env bash
# Makes the benchmark sources once into $BENCH_CACHE (default ~/.cache/coursepack-bench), outside git:
#   lecture720.mp4     2 min, 1280x720 30 fps: 8 slides (15 s each) with text, a swaying picture-in-picture
#                      speaker with camera noise, synthetic speech
#   screencast1080.mp4 1 min, 1920x1080 30 fps: an editor-like screen of small text that is typed line by
#                      line and scrolls, a moving pointer, synthetic speech
#   dense720.mp4      2 min, 1280x720 30 fps: 8 denser slides (15 s each), seven 28 px bullet lines in dark
#                      grey under a 44 px title, the same picture-in-picture speaker and speech: the small-text
#                      case for the weak-link rungs' legibility (bench/lowband.py)
#   camera720.mp4     2 min, 1280x720 30 fps: a full-frame camera shot of a speaker before a panning
#                      backdrop, light camera noise over the whole picture and a slow zoom, the same speech
#                      (CRF 18, about 3 Mb/s)
#   lecture720-30min.mp4  lecture720.mp4 repeated to 30 min (stream copy), for memory and time scaling
# Sources are encoded at high quality (CRF 16; the camera shot CRF 18) so they are a fair reference for VMAF.
set -euo pipefail
cache=${BENCH_CACHE:-$HOME/.cache/coursepack-bench}
mkdir -p "$cache"
cd "$cache"
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
bold=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
mono=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf

speech() {  # speech OUT SECONDS
  local text="In this lecture we look at how adaptive streaming serves learners on weak networks. \
  A video is cut into short segments, each a few seconds long, and encoded at several qualities. \
  The player measures its bandwidth and picks the best quality it can sustain, switching at segment \
  boundaries. Keyframes must line up across renditions so that a switch is seamless. For slides, most \
  of the picture does not change for many seconds, so a good encoder spends almost nothing on those \
  stretches and saves the bits for the moments when a new slide appears. The audio matters most of \
  all: a learner on a two G link can still follow the lecture with speech and the slides alone."
  espeak-ng -s 150 -w "$1.raw.wav" "$text $text $text"
  ffmpeg -v error -y -i "$1.raw.wav" -af "apad,atrim=0:$2" -ar 48000 -ac 2 "$1"
  rm -f "$1.raw.wav"
}

# slide_lecture OUT COLOUR SLIDE_FILTERS PLACE: 2 min at 1280x720 30 fps: SLIDE_FILTERS drawn on a COLOUR
# background ([bg]), the swaying synthetic speaker with camera noise ([pip]) placed by PLACE (which
# ends in [v]), and speech120.wav; encoded at CRF 16 like every bench source.
slide_lecture() {
  ffmpeg -v error -y \
    -f lavfi -i "color=c=$2:s=1280x720:r=30:d=120" \
    -f lavfi -i "gradients=s=320x240:r=30:c0=0x304050:c1=0x708090:speed=0.01:d=120,format=yuv420p" \
    -f lavfi -i "color=c=0xd8a070:s=320x240:r=30:d=120,format=yuva420p,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='255*lt(hypot((X-160-18*sin(T*1.7))/60,(Y-115-6*sin(T*3.1))/78),1)+255*lt(hypot((X-160)/120,(Y-300)/90),1)'" \
    -i speech120.wav \
    -filter_complex "[0:v]$3[bg];[1:v][2:v]overlay,noise=alls=6:allf=t[pip];$4" \
    -map "[v]" -map 3:a -t 120 -c:v libx264 -preset medium -crf 16 -pix_fmt yuv420p -g 60 \
    -c:a aac -b:a 128k -movflags +faststart "$1.tmp.mp4"
  mv "$1.tmp.mp4" "$1"
}

if [ ! -f lecture720.mp4 ]; then
  speech speech120.wav 120
  slides=""
  titles=("Adaptive streaming" "Segments and playlists" "Renditions" "Keyframes and GOPs" \
          "Bandwidth estimation" "Slides compress well" "Audio first" "Summary")
  for i in $(seq 0 7); do
    s=$((i * 15)); e=$((s + 15))
    en="enable='between(t,$s,$e)'"
    slides+="drawtext=fontfile=$bold:text='${titles[$i]}':x=80:y=80:fontsize=54:fontcolor=0x1a237e:$en,"
    for l in 0 1 2 3; do
      slides+="drawtext=fontfile=$font:text='• Point $((l + 1)) of slide $((i + 1)) with some explanatory words':x=100:y=$((200 + l * 62)):fontsize=32:fontcolor=black:$en,"
    done
  done
  slide_lecture lecture720.mp4 0xf5f5f0 "drawbox=x=0:y=0:w=1280:h=40:color=0x1a237e:t=fill,${slides%,}" \
    "[bg][pip]overlay=x=940:y=460[v]"
fi

if [ ! -f dense720.mp4 ]; then
  [ -f speech120.wav ] || speech speech120.wav 120
  slides=""
  titles=("Rate control for slides" "Why keyframes cost bits" "Measuring legibility" "Speech codecs at low rates" \
          "Choosing a ladder" "Players and switching" "Offline viewing" "Questions for next week")
  words=(segment playlist bandwidth keyframe encoder decoder bitrate ladder player buffer network latency \
         codec sample picture quality)
  for i in $(seq 0 7); do
    s=$((i * 15)); e=$((s + 15))
    en="enable='between(t,$s,$e)'"
    slides+="drawtext=fontfile=$bold:text='${titles[$i]}':x=70:y=70:fontsize=44:fontcolor=0x263238:$en,"
    for l in 0 1 2 3 4 5 6; do
      w1=${words[$(((i * 7 + l) % 16))]}; w2=${words[$(((i * 3 + l * 5 + 1) % 16))]}; w3=${words[$(((i + l * 11 + 7) % 16))]}
      slides+="drawtext=fontfile=$font:text='– The $w1 sets the $w2 while the $w3 waits $((i * 7 + l + 3)) ms':x=90:y=$((160 + l * 44)):fontsize=28:fontcolor=0x37474f:$en,"
    done
  done
  slide_lecture dense720.mp4 white "${slides%,}" "[pip]scale=240:180[pips];[bg][pips]overlay=x=1020:y=520[v]"
fi

if [ ! -f screencast1080.mp4 ]; then
  speech speech60.wav 60
  # 60 lines of code-like text, one typed every second, scrolling once the screen is full.
  for n in $(seq 1 60); do printf '%3d  let rendition%02d = Rendition(height: %d, crf: %d, maxKbps: %d)  // line %d\n' \
    "$n" "$n" $((144 + n * 8)) $((20 + n % 8)) $((100 * n)) "$n"; done > code.txt
  ffmpeg -v error -y \
    -f lavfi -i "color=c=0x1e1e1e:s=1920x1080:r=30:d=60" -i speech60.wav \
    -filter_complex "[0:v]drawtext=fontfile=$mono:textfile=code.txt:x=40:y=60-max(0\,floor(t)-38)*26:fontsize=18:fontcolor=0xd4d4d4:line_spacing=8,\
drawbox=x=0:y=60+min(floor(t)\,38)*26:w=1920:h=1080:color=0x1e1e1e:t=fill,\
drawbox=x=0:y=0:w=1920:h=40:color=0x333333:t=fill,\
drawtext=fontfile=$font:text='lecture.swift — Editor':x=20:y=10:fontsize=18:fontcolor=0xcccccc,\
drawbox=x=300+600*sin(t/3):y=400+250*sin(t/5):w=12:h=18:color=white:t=fill[v]" \
    -map "[v]" -map 1:a -t 60 -c:v libx264 -preset medium -crf 16 -pix_fmt yuv420p -g 60 \
    -c:a aac -b:a 128k -movflags +faststart screencast1080.tmp.mp4
  mv screencast1080.tmp.mp4 screencast1080.mp4
fi

if [ ! -f camera720.mp4 ]; then
  # The speaker of the slide lectures filling the frame (head and shoulders, swaying; its matte drawn
  # at 320x180 and scaled up), before a backdrop of moving gradients and a lit panel that pans; light
  # camera noise everywhere and a slow zoom in and out. CRF 18: about 3 Mb/s, a phone's upload.
  ffmpeg -v error -y \
    -f lavfi -i "gradients=s=1280x720:r=30:c0=0x3a4a5a:c1=0x8a7a6a:c2=0x506070:n=3:speed=0.004:d=120,format=yuv420p" \
    -f lavfi -i "color=c=0xd8a070:s=320x180:r=30:d=120,format=yuva420p,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='255*lt(hypot((X-160-18*sin(T*1.7))/43,(Y-83-5*sin(T*3.1))/55),1)+255*lt(hypot((X-160)/105,(Y-225)/75),1)',scale=1280:720" \
    -i speech120.wav \
    -filter_complex "[0:v]drawbox=x=mod(40*t\,1600)-320:y=120:w=260:h=160:color=0xe0e0d0:t=fill[bg];[bg][1:v]overlay,noise=alls=3:allf=t,\
scale=iw*(1.06+0.04*sin(t/9)):-2:eval=frame,crop=1280:720,setsar=1[v]" \
    -map "[v]" -map 2:a -t 120 -c:v libx264 -preset medium -crf 18 -pix_fmt yuv420p -g 60 \
    -c:a aac -b:a 128k -movflags +faststart camera720.tmp.mp4
  mv camera720.tmp.mp4 camera720.mp4
fi

if [ ! -f lecture720-30min.mp4 ]; then
  ffmpeg -v error -y -stream_loop 14 -i lecture720.mp4 -c copy -t 1800 -movflags +faststart lecture720-30min.tmp.mp4
  mv lecture720-30min.tmp.mp4 lecture720-30min.mp4
fi
ls -l "$cache"/*.mp4
