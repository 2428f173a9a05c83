"""Video front end: stylize every frame of a video with any one-pass method, keeping its timing and sound.

`stylize_video(input, output, style, method=..., **options)` decodes the input (any container and
codec FFmpeg reads, through PyAV), stylizes each frame with the stylizer `methods.dispatch` picks for
the options (the same one `brushwork stylize` would use, built once, so a style's statistics or
embedding are computed once for the whole video), and encodes the frames with their original
timestamps: variable frame rates survive. The sound is copied as it is when the output container
takes its codec, else re-encoded (AAC, or Opus in WebM). The output is written to a temporary file
beside it and renamed at the end: a failed or interrupted run leaves an existing file untouched.
`stability` (on by default) carries the previous painted frame along the input's optical flow and
blends it in where the flow is reliable, so strokes stay on what they paint instead of flickering
(`imaging.flow.FlowStabilizer`); `temporal_smoothing` steadies what stands still between frames
(`imaging.temporal.TemporalSmoother`).

This module holds no method logic: per-frame work is the stylizer's `stylize_tensor`.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections import deque
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from brushwork.errors import BrushworkError
from brushwork.features import load_vgg19
from brushwork.files import atomic_write
from brushwork.imaging.flow import DEFAULT_FLOW_SIZE, FlowStabilizer
from brushwork.imaging.resize import fit_long_side, resize
from brushwork.imaging.temporal import TemporalSmoother
from brushwork.methods.dispatch import get_stylizer
from brushwork.methods.one_pass import DEFAULT_STYLE, StylizeOptions, merged_options
from brushwork.methods.optimize import OptimizeOptions, run_optimization
from brushwork.progress import Progress, ProgressCallback, now
from brushwork.runtime import resolve_runtime

# Output suffix -> (FFmpeg container, video encoder, audio encoder used when the sound cannot be copied).
VIDEO_FORMATS = {
    ".mp4": ("mp4", "libx264", "aac"),
    ".m4v": ("mp4", "libx264", "aac"),
    ".mov": ("mov", "libx264", "aac"),
    ".mkv": ("matroska", "libx264", "aac"),
    ".webm": ("webm", "libvpx-vp9", "libopus"),
}
# Audio codecs each container takes as they are (others are re-encoded).
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "matroska": {"aac", "mp3", "opus", "vorbis", "flac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "webm": {"opus", "vorbis"},
}
DEFAULT_QUALITY = 18  # x264/VP9 constant-quality level (CRF): lower is better; 18 is visually near lossless
DEFAULT_TEMPORAL_SMOOTHING = 0.0
# Share of the warped previous painting kept where the flow is reliable. 0.9: the lowest of those measured
# (0.5, 0.7, 0.8, 0.9 in benchmarks/video_flicker.py, docs/performance.md) whose warping error is 3x below
# frame by frame's; the style loss of a middle frame was about the same at 0.8 and 0.9.
DEFAULT_STABILITY = 0.9
# --method optimize: weight of Ruder et al.'s temporal loss (the mean of trust x (image - warped previous)^2,
# pixels in 0-255). Measured on benchmarks/video_flicker.py's pan clip at 160 px, 20 steps a frame, in a run with
# the stabilizer's blend turned off so that only the start and this loss hold the frames together: 200 changed
# nothing, 2000 lowered the warping error 5% at the same style loss, 20000 lowered it 17% but raised the style
# loss 23%. With the blend on (the default; `--temporal-weight 0 2000 20000` in the benchmark) none of them
# moved the warping error more than 1%.
DEFAULT_TEMPORAL_WEIGHT = 2000.0


@dataclass
class VideoResult:
    path: Path
    frames: int
    size: tuple[int, int]  # (width, height) of the output
    audio: str  # "copied", "re-encoded" or "none"
    seconds: float  # wall time
    stylizer: object  # what painted the frames (name, backend, runtime)
    scene_cuts: int = 0  # where the stabilizer started over


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    frames: int  # as the file says, or estimated from its duration; 0 when it cannot tell
    seconds: float | None  # duration of the video stream, when the file says
    audio: bool  # has a sound stream
    container: str  # FFmpeg's name of the format it read, such as "mov,mp4,m4a,3gp,3g2,mj2" or "png_pipe"

    @property
    def still_image(self) -> bool:
        """FFmpeg reads still images too, as one-frame videos (its image formats are "image2" and "*_pipe")."""
        return self.container == "image2" or self.container.endswith("_pipe")


def probe_video(path) -> VideoInfo:
    """What the video file at `path` holds, read from its headers (nothing is decoded); one clear
    `BrushworkError` for a missing file or one FFmpeg cannot read as a video."""
    source = _open_input(Path(path).expanduser())
    try:
        stream = source.streams.video[0]
        seconds = (float(stream.duration * stream.time_base)
                   if stream.duration is not None and stream.time_base is not None else None)
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, _frame_count(stream), seconds,
                         bool(source.streams.audio), source.format.name)
    finally:
        source.close()


class FrameOptimizer:
    """`brushwork optimize` as a video's painter (`method="optimize"`). The first frame (and the first after
    a scene cut) is optimized as `brushwork optimize` would, coarse to fine; every later one starts from the
    previous result carried along the input's motion (Ruder et al. 2016's initialization), at full size
    only, so it starts near where the last frame ended instead of repainting from the photo; the
    stabilizer's blend then applies as for any method."""

    name = "optimize"
    backend = "torch"

    def __init__(self, style, options: OptimizeOptions, temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT):
        styles = style if isinstance(style, (list, tuple)) else [style]
        options.validate(num_styles=len(styles))
        if isinstance(temporal_weight, bool) or not isinstance(temporal_weight, (int, float)) \
                or not 0 <= temporal_weight < math.inf:
            raise BrushworkError(f"temporal weight must be a number of at least 0, got {temporal_weight!r}")
        self.styles, self.options, self.temporal_weight = list(styles), options, float(temporal_weight)
        self.runtime = resolve_runtime(options.device, options.precision)
        self.vgg = self.runtime.prepare_module(load_vgg19(options.vgg_weights, pooling=options.pooling))

    def paint(self, frame: torch.Tensor, init: torch.Tensor | None, trust: torch.Tensor | None = None) -> torch.Tensor:
        """`frame` (1 x 3 x H x W in [0, 1]) optimized at its own size, from `init` when given; with `trust`
        (1 x 1 x H x W in [0, 1], where the motion carried `init` reliably) also held near `init` there by Ruder
        et al.'s temporal loss."""
        h, w = frame.shape[-2:]
        # Coarse to fine only from the photo, and only as far as a small frame allows (16 px at the coarsest).
        fits = 1 + max(0, int(math.log2(max(h, w) / 16))) if max(h, w) >= 16 else 1
        options = replace(self.options, size=max(h, w), scales=min(self.options.scales, fits) if init is None else 1)
        temporal = None
        if init is not None and trust is not None and self.temporal_weight > 0:
            temporal = (init, self.temporal_weight * trust)
        result = run_optimization(frame, self.styles, options, vgg=self.vgg, init_image=init, temporal=temporal)
        image = result.image
        return image if image.shape[-2:] == (h, w) else resize(image, (h, w)).clamp_(0.0, 1.0)


def _av():
    try:
        import av
    except ImportError:
        raise BrushworkError("video needs PyAV (FFmpeg for Python): pip install 'brushwork[video]'") from None
    return av


def _open_input(path: Path):
    av = _av()

    if not path.is_file():
        raise BrushworkError(f"video not found: {str(path)!r}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise BrushworkError(f"cannot read video {str(path)!r}: {_reason(exc)}") from None
    streams = container.streams.video
    context = streams[0].codec_context if streams else None  # None where FFmpeg knows no decoder for the stream
    if context is None or not context.width or not context.height:
        container.close()
        raise BrushworkError(f"cannot read video {str(path)!r}: no video stream FFmpeg can decode")
    return container


def _reason(exc: BaseException) -> str:
    """One line for an error of FFmpeg or the OS: its message without errno numbers or repeated paths."""
    text = getattr(exc, "strerror", None) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return text[:160]


def _output_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """(width, height) of the output frames: the stylized frame's, cropped to even sides (4:2:0 video)."""
    if size is not None:
        height, width = fit_long_side(height, width, size)
    if width < 2 or height < 2:
        raise BrushworkError(f"frames of {width}x{height} are too small to encode")
    return width - width % 2, height - height % 2


def _frame_count(stream) -> int:
    """Frames the input says it has, or an estimate from its duration (0 when it cannot tell)."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration is not None and stream.time_base is not None and stream.average_rate:
        return max(0, round(float(stream.duration * stream.time_base * stream.average_rate)))
    return 0


def stylize_video(input, output, style=None, *, method: str = "auto", options=None,
                  progress: ProgressCallback | None = None, max_frames: int | None = None,
                  quality: int = DEFAULT_QUALITY, audio: bool = True,
                  temporal_smoothing: float = DEFAULT_TEMPORAL_SMOOTHING, stability: float = DEFAULT_STABILITY,
                  flow_size: int = DEFAULT_FLOW_SIZE, optimize_options: OptimizeOptions | None = None,
                  temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT, stylizer=None, **overrides) -> VideoResult:
    """Stylize every frame of the video file `input` into `output` (its suffix picks the format:
    .mp4, .m4v, .mov, .mkv or .webm). `style`, `method` and the keyword options are `brushwork.stylize`'s
    (e.g. `strength=0.8, preserve_color="luminance", size=720`), or `options` a `StylizeOptions`.
    `max_frames` stops early (the sound stops with the last frame); `audio=False` drops the sound;
    `quality` is the encoder's CRF (0-51). `temporal_smoothing` (0 to below 1) averages each pixel's
    painting over the last frames where the input stood still there, against flicker. `stability` (0 to
    below 1) keeps that share of the previous painted frame, carried along the input's optical flow, where
    the flow is reliable (0: every frame painted on its own); the flow runs on a copy at most `flow_size`
    px long. `method="optimize"` optimizes every frame (`optimize_options`: its steps, weights and layers;
    the output size is the video's) from the previous one carried along the motion, held near it where the
    motion is reliable by a temporal loss of weight `temporal_weight` (`FrameOptimizer`): minutes per frame
    on a CPU. `stylizer`: a one-pass stylizer already loaded (as `get_stylizer` returns;
    the server keeps its own) to paint with instead of one built from the options. `progress` is called after
    each frame; its `image()` is the frame just painted. Returns a `VideoResult`."""
    av = _av()

    src, dst = Path(input).expanduser(), Path(output).expanduser()
    fmt = VIDEO_FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise BrushworkError(f"cannot write {str(dst)!r}: unknown video format {dst.suffix or '(none)'!r} "
                             f"(use {', '.join(VIDEO_FORMATS)})")
    if dst.is_dir():
        raise BrushworkError(f"output {str(dst)!r} is a directory: give a file name such as {dst / 'out.mp4'}")
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise BrushworkError(f"output {str(dst)!r} would overwrite its input: choose another -o")
    if not (isinstance(quality, int) and 0 <= quality <= 51):
        raise BrushworkError(f"quality must be a whole number from 0 (best) to 51, got {quality}")
    if max_frames is not None and max_frames < 1:
        raise BrushworkError(f"max frames must be at least 1, got {max_frames}")
    smoother = TemporalSmoother(temporal_smoothing)  # checks the value before any output exists
    stabilizer = FlowStabilizer(stability, flow_size)  # and this one (and that OpenCV is there when needed)
    if options is None:
        options = StylizeOptions(style=DEFAULT_STYLE if style is None else style, method=method)
    opts = merged_options(options, overrides)
    # A bad style, model or option fails here, before any output exists.
    if stylizer is not None:
        if not callable(getattr(stylizer, "stylize_tensor", None)):
            raise BrushworkError("stylizer must be a one-pass stylizer (with stylize_tensor), "
                                 f"got {type(stylizer).__name__}")
    elif opts.method == "optimize":
        stylizer = FrameOptimizer(opts.style, optimize_options or OptimizeOptions(device=opts.device,
                                                                                   precision=opts.precision),
                                  temporal_weight)
    else:
        stylizer = get_stylizer(opts)

    container_name, video_codec, audio_codec = fmt
    started = now()
    source = _open_input(src)
    try:
        with atomic_write(dst) as tmp:
            sink = None
            try:
                v_in = source.streams.video[0]
                v_in.thread_type = "AUTO"
                a_in = source.streams.audio[0] if audio and source.streams.audio else None
                if a_in is not None and a_in.codec_context is None:  # a sound FFmpeg knows no codec for: left out
                    a_in = None
                width, height = _output_size(v_in.codec_context.width, v_in.codec_context.height, opts.size)
                try:
                    sink = av.open(str(tmp), mode="w", format=container_name)
                except (av.FFmpegError, OSError) as exc:
                    raise BrushworkError(f"cannot write {str(dst)!r}: {_reason(exc)}") from None
                rate = v_in.average_rate or v_in.guessed_rate or Fraction(25)
                v_out = sink.add_stream(video_codec, rate=rate)
                v_out.width, v_out.height, v_out.pix_fmt = width, height, "yuv420p"
                # The encoder counts time in the input's units, not in 1 / frame rate: a variable-rate input's
                # timestamps would otherwise be rounded to the average rate's grid (measured: 0.25 s -> 0.217 s).
                v_out.time_base = v_out.codec_context.time_base = v_in.time_base or Fraction(1, 90000)
                v_out.options = {"crf": str(quality)} if video_codec == "libx264" else {"crf": str(quality), "b": "0"}
                a_out, audio_mode = None, "none"
                if a_in is not None:
                    if a_in.codec_context.name in _COPYABLE_AUDIO[container_name]:
                        a_out, audio_mode = sink.add_stream_from_template(a_in), "copied"
                    else:
                        sample_rate = 48000 if audio_codec == "libopus" else a_in.rate or 48000
                        a_out = sink.add_stream(audio_codec, rate=sample_rate)
                        audio_mode = "re-encoded"
                total = _frame_count(v_in)
                if max_frames is not None:
                    total = min(total, max_frames) if total else max_frames
                frames, end_time = 0, math.inf  # end_time: where the sound stops when max_frames cuts the video
                # Sound waits here until the video has reached its time: the video decoder holds frames back, so
                # without the wait --max-frames would not know where the sound ends before muxing it.
                sound = _SoundQueue(a_out, audio_mode, sink)
                streams = [v_in] + ([a_in] if a_in is not None else [])
                for packet in source.demux(*streams):
                    if packet.stream is a_in:
                        if _start(packet) >= end_time:
                            break  # cut by --max-frames, and the sound has reached the cut: nothing more to read
                        sound.add(packet)
                        continue
                    if frames == max_frames:
                        if a_in is None:
                            break
                        continue  # read on for the sound up to the cut
                    for frame in _decode(packet, src):
                        painted = _stylize_frame(stylizer, smoother, stabilizer, frame, opts, width, height)
                        painted.pts, painted.time_base = frame.pts, frame.time_base
                        for out_packet in v_out.encode(painted):
                            sink.mux(out_packet)
                        frames += 1
                        if frame.pts is not None and frame.time_base is not None:
                            sound.write_until(float(frame.pts * frame.time_base))
                        if progress is not None:
                            progress(Progress(step=frames, total=max(total, frames), size=(height, width),
                                              elapsed=now() - started, image=functools.partial(_frame_tensor, painted)))
                        if frames == max_frames:
                            if frame.pts is not None and frame.time_base is not None:
                                end_time = float((frame.pts + (frame.duration or 0)) * frame.time_base)
                            else:
                                end_time = frames / float(rate)
                            break
                if frames == 0:
                    raise BrushworkError(f"{str(src)!r} has no video frames that could be decoded")
                for out_packet in v_out.encode(None):
                    sink.mux(out_packet)
                sound.write_until(end_time, last=True)
                sink.close()
                sink = None
            finally:
                if sink is not None:  # the run failed: its own error is the one to report
                    with contextlib.suppress(Exception):
                        sink.close()
    except av.FFmpegError as exc:
        raise BrushworkError(f"cannot stylize video {str(src)!r} into {str(dst)!r}: {_reason(exc)}") from None
    finally:
        source.close()
    return VideoResult(dst, frames, (width, height), audio_mode, now() - started, stylizer, stabilizer.scene_cuts)


def _frame_tensor(frame) -> torch.Tensor:
    """1 x 3 x H x W in [0, 1] of a decoded or painted frame."""
    return torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def _decode(packet, src: Path):
    av = _av()

    try:
        return packet.decode()
    except av.FFmpegError as exc:
        raise BrushworkError(f"cannot decode a frame of {str(src)!r}: {_reason(exc)}") from None


def _stylize_frame(stylizer, smoother: TemporalSmoother, stabilizer: FlowStabilizer, frame, opts, width: int,
                   height: int):
    av = _av()

    rgb = _frame_tensor(frame)
    optimizing = isinstance(stylizer, FrameOptimizer)
    seen = None  # the input at the output's size, for what looks at it
    if optimizing or smoother.strength > 0 or stabilizer.stability > 0:
        seen = rgb if rgb.shape[-2:] == (height, width) else resize(rgb, (height, width)).clamp_(0.0, 1.0)
    if optimizing:  # starts from the last result where the motion carries it (`FrameOptimizer`)
        tracked = stabilizer.track(seen)
        # Everywhere, as Ruder et al. initialize: where the flow fails the optimization repaints from there.
        init, trust = (None, None) if tracked is None else tracked
        y = stabilizer.blend(stylizer.paint(seen, init, trust))
    else:
        y = stylizer.stylize_tensor(rgb, opts)[:, :, :height, :width]
        if stabilizer.stability > 0:
            y = stabilizer(seen, y)
    if smoother.strength > 0:
        y = smoother(seen, y)
    y = y[0].clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8).permute(1, 2, 0)
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(y.numpy()), format="rgb24")


class _SoundQueue:
    """The input's sound packets on their way to the output: copied, or decoded and re-encoded."""

    def __init__(self, stream, mode: str, sink):
        self.stream, self.mode, self.sink = stream, mode, sink
        self.pending = deque()

    def add(self, packet) -> None:
        if self.stream is not None and packet.dts is not None:  # dts None: the demuxer's flush packet
            self.pending.append(packet)

    def write_until(self, seconds: float, last: bool = False) -> None:
        """Write the packets that start before `seconds`; with `last`, drop the rest and flush the encoder."""
        while self.pending and (_start(self.pending[0]) < seconds):
            self._write(self.pending.popleft())
        if last:
            self.pending.clear()
            if self.mode == "re-encoded":
                for out_packet in self.stream.encode(None):
                    self.sink.mux(out_packet)

    def _write(self, packet) -> None:
        if self.mode == "copied":
            packet.stream = self.stream
            self.sink.mux(packet)
            return
        for frame in packet.decode():
            for out_packet in self.stream.encode(frame):
                self.sink.mux(out_packet)


def _start(packet) -> float:
    if packet.pts is None or packet.time_base is None:
        return -math.inf  # no timestamp: write it with what comes before
    return float(packet.pts * packet.time_base)
