"""Tiny synthetic video clips for the tests: moving gradients in H.264 with a tone in AAC, written with PyAV."""

from fractions import Fraction

import numpy as np

FPS = 12


def gradient_frame(i, w, h):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 4 + i * 10) % 256, (y * 5) % 256, np.full_like(x, 128 + i * 5)], -1).astype(np.uint8)


def make_clip(path, w=64, h=48, frames=8, audio=True, pts_step=1, frame=None, tone_from=0.0):
    """An H.264 clip of moving gradients at FPS frames per second (pts_step > 1: gaps, a variable rate),
    with a sine tone in AAC, silent before `tone_from` seconds. `frame(i, w, h)` draws other frames."""
    frame_image = frame or gradient_frame
    import av

    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = w, h, "yuv420p"
    video.time_base = Fraction(1, FPS)
    sound = out.add_stream("aac", rate=16000) if audio else None
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(frame_image(i, w, h), format="rgb24")
        frame.pts, frame.time_base = i * pts_step, Fraction(1, FPS)
        for p in video.encode(frame):
            out.mux(p)
    for p in video.encode(None):
        out.mux(p)
    if sound is not None:
        t = np.arange(int(16000 * frames * pts_step / FPS)) / 16000
        wave = np.where(t >= tone_from, 0.3 * np.sin(2 * np.pi * 440 * t), 0.0)
        tone = av.AudioFrame.from_ndarray(wave.astype(np.float32)[None], format="flt", layout="mono")
        tone.sample_rate, tone.pts = 16000, 0
        for p in sound.encode(tone):
            out.mux(p)
        for p in sound.encode(None):
            out.mux(p)
    out.close()
    return path


def read_clip(path):
    """(frames as uint8 arrays, their times in seconds, audio seconds or None)."""
    import av

    with av.open(str(path)) as c:
        frames, times = [], []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.pts * f.time_base))
    with av.open(str(path)) as c:
        audio = None
        if c.streams.audio:
            rate = c.streams.audio[0].rate
            audio = sum(f.samples for f in c.decode(audio=0)) / rate
    return frames, times, audio


def sound_onset(path):
    """Seconds from the first frame's time to where the tone of `make_clip(tone_from=...)` starts."""
    import av

    with av.open(str(path)) as c:
        first = next(float(f.pts * f.time_base) for f in c.decode(video=0))
    with av.open(str(path)) as c:
        for f in c.decode(audio=0):
            loud = np.nonzero(np.abs(f.to_ndarray()[0]) > 0.1)[0]
            if len(loud):
                return float(f.pts * f.time_base) + loud[0] / f.sample_rate - first
    return None
