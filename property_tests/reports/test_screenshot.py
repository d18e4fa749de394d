"""``python -m reports.screenshot DIR``: PNG slices of a report, or what to install."""
import subprocess
import sys

import matplotlib.image as mpimg
import pytest

import reports.screenshot as shot
from reports.builder import Section, build_report


def _report(tmp_path):
    def section(ctx):
        return Section(key="demo", title="Demo", data={},
                       blocks=[("p", "A paragraph. " * 40)] * 30)
    return build_report([section], out_root=tmp_path, progress=False)


def test_without_chromium_it_says_what_to_install(tmp_path, monkeypatch, capsys):
    path = _report(tmp_path)
    monkeypatch.setattr(shot, "find_chromium", lambda: None)
    assert shot.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "apt-get install -y chromium" in err and err.count("\n") == 1
    assert not (path / "screenshots").exists()


def test_a_directory_without_index_html_is_refused(tmp_path, capsys):
    assert shot.main([str(tmp_path)]) == 2
    assert "index.html does not exist" in capsys.readouterr().err


def test_find_chromium_honours_the_environment(monkeypatch):
    monkeypatch.setenv("CHROMIUM", sys.executable)  # any executable stands in
    assert shot.find_chromium() == sys.executable


@pytest.mark.slow  # starts Chromium (about 10 s)
@pytest.mark.skipif(shot.find_chromium() is None, reason="Chromium is not installed")
def test_screenshots_cover_the_whole_page(tmp_path):
    path = _report(tmp_path)
    out = subprocess.run([sys.executable, "-m", "reports.screenshot", str(path), "--height",
                          "600"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    files = [p for p in out.stdout.split("\n") if p]
    assert len(files) >= 2  # 30 long paragraphs do not fit in one 600 px slice
    imgs = [mpimg.imread(f) for f in files]
    assert all(i.shape[1] == 1280 for i in imgs)
    assert all(i.shape[0] == 600 for i in imgs[:-1]) and 0 < imgs[-1].shape[0] <= 600
    # the first slice shows the title (dark pixels near the top), the last is not blank
    assert (imgs[0][:120, :, :3] < 0.3).any() and (imgs[-1][:, :, :3] < 0.3).any()
