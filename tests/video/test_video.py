"""The video front end on tiny synthetic clips: frames, timing and sound kept, the same stylizer as for
images, clear one-line errors, and an existing output never damaged by a failed run."""


import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from clips import FPS, gradient_frame, make_clip, read_clip, sound_onset  # noqa: E402

from brushwork.cli.main import main  # noqa: E402
from brushwork.errors import BrushworkError  # noqa: E402
from brushwork.methods.dispatch import get_stylizer  # noqa: E402
from brushwork.methods.one_pass import StylizeOptions  # noqa: E402
from brushwork.methods.optimize import OptimizeOptions  # noqa: E402
from brushwork.models.registry import save_model  # noqa: E402
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig  # noqa: E402
from brushwork.video import FrameOptimizer, stylize_video  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture
def model(tmp_path):
    torch.manual_seed(0)
    net = StyleTransferNet(TransformerConfig(width=8, num_residual=1)).eval()
    with torch.no_grad():
        for layer in net.norm_layers():
            layer.scale.normal_(1.0, 0.3)
            layer.shift.normal_(0.0, 0.3)
    return save_model(tmp_path / "tiny.safetensors", "feedforward", net.state_dict(), net.config.to_dict(),
                      {"name": "tiny"})


def test_every_frame_is_stylized_with_its_timing_and_the_sound_kept(tmp_path, model):
    clip = make_clip(tmp_path / "in.mp4")
    # stability 0: each output frame is then exactly the stylizer's painting of its input frame.
    result = stylize_video(clip, tmp_path / "out.mp4", str(model), stability=0)
    assert (result.frames, result.size, result.audio) == (8, (64, 48), "copied")
    frames_in, times_in, audio_in = read_clip(clip)
    frames_out, times_out, audio_out = read_clip(tmp_path / "out.mp4")
    assert len(frames_out) == 8 and frames_out[0].shape == (48, 64, 3)
    assert times_out == pytest.approx(times_in)
    assert audio_out == pytest.approx(audio_in, abs=0.01)
    # Each frame is what the image stylizer makes of the decoded input frame, up to H.264's losses:
    # compared in luma, since 4:2:0 video keeps a quarter of the colour resolution.
    stylizer = get_stylizer(StylizeOptions(style=str(model)))
    luma = np.array([0.299, 0.587, 0.114])
    for i in (0, 7):
        x = torch.from_numpy(frames_in[i]).permute(2, 0, 1)[None].float() / 255
        expected = stylizer.stylize_tensor(x)[0].permute(1, 2, 0).numpy() * 255
        assert np.abs(frames_out[i] @ luma - expected @ luma).mean() < 3
    # And the frames differ from the input: they were stylized.
    assert np.abs(frames_out[3].astype(np.float64) - frames_in[3]).mean() > 10


def test_a_variable_frame_rate_keeps_its_gaps(tmp_path, model):
    clip = make_clip(tmp_path / "gaps.mp4", frames=5, pts_step=3, audio=False)
    result = stylize_video(clip, tmp_path / "out.mkv", str(model))
    assert result.audio == "none"
    _, times_in, _ = read_clip(clip)
    _, times_out, audio = read_clip(tmp_path / "out.mkv")
    assert audio is None
    assert times_out == pytest.approx(times_in, abs=1e-3)
    assert times_out[1] - times_out[0] == pytest.approx(0.25, abs=1e-3)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_the_sound_stays_in_step_with_the_frames(tmp_path, model, suffix):
    """A tone that starts at 0.5 s starts 0.5 s after the first frame in the output too. (Matroska has no
    edit list for the AAC encoder's 1,024 priming samples, so FFmpeg starts a copied AAC track and the
    frames 64 ms late there, together: the sync holds.)"""
    clip = make_clip(tmp_path / "in.mp4", frames=12, tone_from=0.5)
    onset = sound_onset(clip)
    assert onset == pytest.approx(0.5, abs=2e-3)
    result = stylize_video(clip, tmp_path / f"out{suffix}", str(model), stability=0)
    assert result.audio == "copied"
    assert sound_onset(tmp_path / f"out{suffix}") == pytest.approx(onset, abs=1e-3)


def test_size_max_frames_odd_sizes_and_webm(tmp_path, model):
    clip = make_clip(tmp_path / "odd.mp4", w=66, h=50)
    # --size 33: 33 x 25 cropped to even sides for 4:2:0; the sound stops with the third frame.
    result = stylize_video(clip, tmp_path / "out.webm", str(model), size=33, max_frames=3)
    assert (result.frames, result.size, result.audio) == (3, (32, 24), "re-encoded")  # AAC cannot go in WebM
    frames, times, audio = read_clip(tmp_path / "out.webm")
    assert len(frames) == 3 and frames[0].shape == (24, 32, 3)
    assert audio is not None and 3 / FPS - 0.07 < audio < 3 / FPS + 0.07  # packets of 64 ms


def test_any_style_method_through_the_same_dispatch(tmp_path, save_tiny_adain, style_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    decoder = save_tiny_adain(tmp_path / "adain.safetensors")
    result = stylize_video(clip, tmp_path / "out.mp4", str(style_path), method="adain", decoder=str(decoder),
                           alpha=0.5)
    assert result.frames == 3 and result.stylizer.method == "adain"


def test_a_painting_file_is_painted_by_magentas_network_by_default(tmp_path, style_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    result = stylize_video(clip, tmp_path / "out.mp4", str(style_path), device="cpu")
    assert result.frames == 3 and result.stylizer.name == "magenta-arbitrary"
    assert len(read_clip(tmp_path / "out.mp4")[0]) == 3


def test_temporal_smoothing_steadies_a_still_scene(tmp_path, model):
    rng = np.random.default_rng(0)
    scene = gradient_frame(0, 64, 48).astype(np.float64)

    def noisy_still_frame(i, w, h):  # a still scene under fresh sensor noise, as a camera on a tripod sees it
        return np.clip(scene + rng.normal(0, 8, scene.shape), 0, 255).astype(np.uint8)

    clip = make_clip(tmp_path / "still.mp4", frames=8, audio=False, frame=noisy_still_frame)
    flicker = {}
    for strength in (0.0, 0.7):
        out = tmp_path / f"out-{strength}.mkv"
        stylize_video(clip, out, str(model), temporal_smoothing=strength, stability=0, quality=0)
        frames = np.stack(read_clip(out)[0]).astype(np.float64)
        flicker[strength] = np.abs(np.diff(frames, axis=0)).mean()
    assert flicker[0.7] < 0.7 * flicker[0.0], flicker


def _panning_frame(seed):
    """Frames of a camera panning 2 px a frame over a smooth random texture (`seed` picks the scene)."""
    rng = np.random.default_rng(seed)
    scene = rng.random((60, 120, 3))
    for _ in range(2):  # blur: a texture optical flow can follow
        scene = sum(np.roll(scene, shift, axis) for shift in (1, -1) for axis in (0, 1)) / 5 + scene / 5
    scene = (scene - scene.min()) / (scene.max() - scene.min()) * 255

    def frame(i, w, h):
        return scene[:h, 2 * i:2 * i + w].astype(np.uint8)
    return frame


def test_stability_is_on_by_default_keeps_frames_timing_and_sound_and_steadies_a_pan(tmp_path, model):
    clip = make_clip(tmp_path / "pan.mp4", frames=8, frame=_panning_frame(0))
    outputs = {}
    for stability in (None, 0.0):
        out = tmp_path / f"out-{stability}.mp4"
        extra = {} if stability is None else {"stability": stability}
        result = stylize_video(clip, out, str(model), quality=0, **extra)
        assert (result.frames, result.audio, result.scene_cuts) == (8, "copied", 0)
        frames, times, audio = read_clip(out)
        _, times_in, audio_in = read_clip(clip)
        assert len(frames) == 8 and times == pytest.approx(times_in) and audio == pytest.approx(audio_in, abs=0.01)
        outputs[stability] = np.stack(frames).astype(np.float64)

    def warping_error(frames):  # frame t against frame t-1 moved 2 px left (the known motion), inside
        return np.abs(frames[1:, 6:-6, 6:-8] - frames[:-1, 6:-6, 8:-6]).mean()

    assert warping_error(outputs[None]) < 0.7 * warping_error(outputs[0.0])


def test_optimize_starts_each_frame_from_the_last_result_carried_along_the_motion(tmp_path, style_path, vgg):
    # The painter alone: from a given start, one step stays near that start, not near the photo.
    painter = FrameOptimizer(str(style_path), OptimizeOptions(steps=1, device="cpu", precision="fp32"))
    painter.vgg = vgg
    photo = torch.from_numpy(_panning_frame(0)(0, 48, 32)).permute(2, 0, 1)[None].float() / 255
    start = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    from_start = painter.paint(photo, start)
    assert (from_start - start).abs().mean() < (from_start - photo).abs().mean()
    # End to end: every frame painted, its timing kept; with stability the pan is steadier.
    clip = make_clip(tmp_path / "pan.mp4", w=48, h=32, frames=4, audio=False, frame=_panning_frame(0))
    outputs = {}
    for stability in (0.9, 0.0):
        out = tmp_path / f"opt-{stability}.mp4"
        result = stylize_video(clip, out, str(style_path), method="optimize", quality=0, stability=stability,
                               optimize_options=OptimizeOptions(steps=2, device="cpu", precision="fp32"))
        assert result.frames == 4 and result.stylizer.name == "optimize"
        frames, times, _ = read_clip(out)
        assert len(frames) == 4 and times == pytest.approx(read_clip(clip)[1])
        outputs[stability] = np.stack(frames).astype(np.float64)

    def warping_error(frames):  # frame t against frame t-1 moved 2 px left (the known motion), inside
        return np.abs(frames[1:, 4:-4, 4:-6] - frames[:-1, 4:-4, 6:-4]).mean()

    errors = {stability: warping_error(frames) for stability, frames in outputs.items()}
    assert errors[0.9] < 0.8 * errors[0.0], errors


def test_optimize_holds_each_frame_near_the_carried_result_where_the_motion_is_reliable(style_path, vgg,
                                                                                      monkeypatch):
    import brushwork.video as video

    seen = []
    real = video.run_optimization
    monkeypatch.setattr(video, "run_optimization", lambda *a, **kw: seen.append(kw["temporal"]) or real(*a, **kw))
    painter = FrameOptimizer(str(style_path), OptimizeOptions(steps=1, device="cpu", precision="fp32"), 300.0)
    painter.vgg = vgg
    photo, start = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    trust = torch.rand(1, 1, 32, 48)
    painter.paint(photo, None)  # the first frame: nothing to hold it to
    painter.paint(photo, start, trust)
    assert seen[0] is None
    target, weight = seen[1]
    assert target is start and torch.equal(weight, 300.0 * trust)


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf"), True, "2"])
def test_a_bad_temporal_weight_is_refused_with_one_line(style_path, weight):
    with pytest.raises(BrushworkError, match="temporal weight must be a number of at least 0"):
        FrameOptimizer(str(style_path), OptimizeOptions(steps=1, device="cpu", precision="fp32"), weight)


def test_a_scene_cut_resets_the_stabilizer(tmp_path, model):
    first, second = _panning_frame(0), _panning_frame(1)
    clip = make_clip(tmp_path / "cut.mp4", frames=8, audio=False,
                     frame=lambda i, w, h: first(i, w, h) if i < 4 else second(i, w, h))
    result = stylize_video(clip, tmp_path / "out.mkv", str(model), quality=0)
    assert result.scene_cuts == 1
    # The first frame after the cut is the new painting as it is, with nothing of the old scene blended in.
    plain = tmp_path / "plain.mkv"
    stylize_video(clip, plain, str(model), quality=0, stability=0)
    stabilized, painted = read_clip(tmp_path / "out.mkv")[0], read_clip(plain)[0]
    assert np.abs(stabilized[4].astype(np.float64) - painted[4]).max() <= 1
    assert np.abs(stabilized[3].astype(np.float64) - painted[3]).mean() > 0.5  # before it: stabilized


def test_a_failed_run_leaves_an_existing_output_untouched(tmp_path, model, monkeypatch):
    clip = make_clip(tmp_path / "in.mp4")
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"an earlier result")
    stylizer = get_stylizer(StylizeOptions(style=str(model)))
    real, calls = stylizer.stylize_tensor, []

    def fails_on_the_fourth_frame(x, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise BrushworkError("out of memory on frame 4")
        return real(x, *args, **kwargs)

    monkeypatch.setattr(stylizer, "stylize_tensor", fails_on_the_fourth_frame)
    with pytest.raises(BrushworkError, match="frame 4"):
        stylize_video(clip, existing, str(model))
    assert existing.read_bytes() == b"an earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4", "tiny.safetensors"]  # no temporary


def run_cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_cli(tmp_path, capsys, model):
    clip = make_clip(tmp_path / "in.mp4", frames=4)
    code, err = run_cli(capsys, "video", clip, "-o", tmp_path / "out.mov", "--style", model, "--strength", "0.5",
                        "--no-audio", "--quality", "30")
    assert code == 0 and "4 frames, 64x48, sound none" in err
    assert len(read_clip(tmp_path / "out.mov")[0]) == 4


def _without_a_decoder(path):
    """The clip with its video track's codec renamed to one FFmpeg does not know (the stream is there, with no
    decoder: PyAV gives it no codec context)."""
    data = path.read_bytes()
    path.write_bytes(data[:32] + data[32:].replace(b"avc1", b"zzzz"))  # past the file type box's brand list
    return path


@pytest.mark.parametrize("make_input, output, extra, message", [
    (lambda p: p / "missing.mp4", "out.mp4", [], "video not found"),
    (lambda p: (p / "junk.mp4").write_bytes(b"not a video at all" * 10) and p / "junk.mp4", "out.mp4", [],
     "cannot read video"),
    (lambda p: (p / "cut.mp4").write_bytes(make_clip(p / "in.mp4", frames=8).read_bytes()[:1500]) and p / "cut.mp4",
     "out.mp4", [], "cannot read video"),  # a truncated file
    (lambda p: _without_a_decoder(make_clip(p / "in.mp4", frames=2)), "out.mp4", [], "no video stream FFmpeg can"),
    (lambda p: make_clip(p / "in.mp4", frames=2, audio=False), "out.avi", [], "unknown video format '.avi'"),
    (lambda p: make_clip(p / "in.mp4", frames=2, audio=False), "out.mp4", ["--quality", "99"], "quality must be"),
    (lambda p: make_clip(p / "in.mp4", frames=2, audio=False), "out.mp4", ["--strength", "2"], "strength must be"),
    (lambda p: make_clip(p / "in.mp4", frames=2, audio=False), "in.mp4", [], "would overwrite its input"),
    (lambda p: make_clip(p / "in.mp4", frames=2, audio=False), "out.mp4", ["--temporal-smoothing", "1"],
     "temporal smoothing must be at least 0 and below 1"),
    (lambda p: make_clip(p / "in.mp4", frames=2, audio=False), "out.mp4", ["--stability", "1"],
     "stability must be at least 0 and below 1"),
])
def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path, capsys, model, make_input, output, extra, message):
    source = make_input(tmp_path)
    code, err = run_cli(capsys, "video", source, "-o", tmp_path / output, "--style", model, *extra)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and message in lines[0], err
