#!/usr/bin/env bash
# Regenerates Samples/lecture.mp4: a 24-second 720p lecture-like clip made entirely from
# synthetic sources, so it carries no third-party rights.
#   - four slides of text (drawtext, DejaVu fonts), changing at 0, 6.5, 12.5 and 18.5 s
#   - a picture-in-picture "speaker" in the bottom-right corner: a swaying head shape over a
#     slowly moving gradient, with light camera noise
#   - speech from espeak-ng reading the slide text
# Needs: ffmpeg (with libx264, drawtext), espeak-ng, fonts-dejavu-core.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
bold=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf

espeak-ng -s 150 -w "$tmp/speech.wav" \
  "Welcome to this lecture on adaptive streaming. First, why segments matter. \
   A player fetches short segments and switches between renditions as the network changes. \
   Second, keyframes. Every segment must start with a keyframe so that a switch is clean. \
   Third, weak networks. The lowest rung must fit a two G link, and audio alone must always work. \
   Thank you for watching."

slide() {  # slide START END TITLE LINE1 LINE2
  echo "drawtext=fontfile=$bold:text='$3':x=80:y=90:fontsize=56:fontcolor=0x1a237e:enable='between(t,$1,$2)',\
drawtext=fontfile=$font:text='• $4':x=100:y=230:fontsize=36:fontcolor=black:enable='between(t,$1,$2)',\
drawtext=fontfile=$font:text='• $5':x=100:y=300:fontsize=36:fontcolor=black:enable='between(t,$1,$2)'"
}
slides="$(slide 0 6.5 'Adaptive streaming for lectures' 'HLS playlists of short segments' 'One source, many renditions'),\
$(slide 6.5 12.5 'Why segments matter' 'Players fetch 6 s at a time' 'and switch renditions between segments'),\
$(slide 12.5 18.5 'Keyframes' 'Every segment starts with an IDR frame' 'Renditions stay aligned for switching'),\
$(slide 18.5 24 'Weak networks' 'Lowest rung under 192 kb/s' 'Audio-only rendition for 2G links')"

ffmpeg -v error -y \
  -f lavfi -i "color=c=0xf5f5f0:s=1280x720:r=30:d=24" \
  -f lavfi -i "gradients=s=320x240:r=30:c0=0x304050:c1=0x708090:speed=0.01:d=24,format=yuv420p" \
  -f lavfi -i "color=c=0xd8a070:s=320x240:r=30:d=24,format=yuva420p,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='255*lt(hypot((X-160-18*sin(T*1.7))/60,(Y-115-6*sin(T*3.1))/78),1)+255*lt(hypot((X-160)/120,(Y-300)/90),1)'" \
  -i "$tmp/speech.wav" \
  -filter_complex "[0:v]drawbox=x=0:y=0:w=1280:h=40:color=0x1a237e:t=fill,${slides}[bg];[1:v][2:v]overlay,noise=alls=6:allf=t[pip];[bg][pip]overlay=x=940:y=460[v]" \
  -map "[v]" -map 3:a -t 24 \
  -c:v libx264 -preset slow -crf 23 -pix_fmt yuv420p -g 60 \
  -c:a aac -b:a 96k -ar 48000 -ac 2 -af "apad" \
  -movflags +faststart lecture.mp4
ls -l lecture.mp4
