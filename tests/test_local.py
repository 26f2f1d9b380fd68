"""The local cloud's pure parts (no LXD needed): mirror discovery, image recipe, guards.
The real setup, apply and destroy run in tests/e2e (nox -s e2e)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from castelet.lifecycle import changed_resources
from castelet.local import cloud
from castelet.local.image import ImageRecipe, host_mirror


def test_host_mirror_from_deb822_sources(tmp_path: Path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n")
    assert host_mirror(tmp_path) == "http://mirror.example/debian"


def test_host_mirror_from_one_line_sources(tmp_path: Path):
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://ftp.example.ca/debian bookworm main\n")
    assert host_mirror(tmp_path) == "http://ftp.example.ca/debian"


def test_host_mirror_default(tmp_path: Path):
    assert host_mirror(tmp_path) == "http://deb.debian.org/debian"


def test_image_recipe_hash_changes_only_with_the_recipe():
    base = ImageRecipe(mirror="http://a/debian")
    assert base.digest == ImageRecipe(mirror="http://a/debian").digest
    assert base.digest != ImageRecipe(mirror="http://b/debian").digest
    assert base.digest != ImageRecipe(mirror="http://a/debian", packages=(*base.packages, "vim")).digest
    assert "cloud-init" in base.packages and "python3-cffi-backend" in base.packages


def test_setup_refuses_without_root(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cloud.os, "geteuid", lambda: 1000)
    with pytest.raises(cloud.SetupError, match="needs root"):
        cloud.setup(lambda _message: None)


def test_free_subnet_avoids_host_routes(monkeypatch: pytest.MonkeyPatch):
    routes = "default via 10.0.0.1 dev eth0\n10.166.0.0/16 dev eth1 scope link\n10.167.0.0/24 dev br0\n"

    def fake_run(*args, **kwargs):
        return subprocess.CompletedProcess(args, 0, stdout=routes, stderr="")

    monkeypatch.setattr(cloud.subprocess, "run", fake_run)
    assert cloud._free_subnet() == "10.168.0.1/24"


def test_changed_resources_are_listed_from_puppet_notices():
    output = (
        "Notice: Compiled catalog for web1 in environment production in 1.0 seconds\n"
        "Notice: /Stage[main]/Castelet::Profile::Base/File[/etc/motd]/content: content changed\n"
        "Notice: /Stage[main]/Castelet::Profile::Base/File[/etc/motd]/mode: mode changed\n"
        "Notice: /Stage[main]/Main/Node[default]/Exec[x]/returns: executed successfully\n"
        "Notice: Applied catalog in 2.1 seconds\n"
    )
    assert changed_resources(output) == ["/Stage[main]/Castelet::Profile::Base/File[/etc/motd]",
                                         "/Stage[main]/Main/Node[default]/Exec[x]"]


def test_an_image_of_another_release_gets_that_releases_sources():
    from castelet.local.image import _sources_for

    host = ("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\n"
            "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n")
    trixie = _sources_for(host, "trixie")
    assert "Suites: trixie trixie-updates\n" in trixie and "Suites: trixie-security\n" in trixie
    assert "bookworm" not in trixie and "http://mirror.example/debian-security" in trixie
    assert _sources_for(trixie, "bookworm") == host


def test_each_release_has_its_own_image_recipe():
    from castelet.local.image import ImageRecipe, image_file
    from castelet.releases import RELEASES

    recipes = [ImageRecipe(mirror="http://mirror.example/debian", release=r) for r in RELEASES.values()]
    assert len({r.digest for r in recipes}) == len(recipes)
    assert [image_file(r).split("-")[1] for r in recipes] == list(RELEASES)
    assert {r.suite for r in recipes} == {"trixie", "bookworm"}


def test_apt_cache_and_extra_cas_are_part_of_the_image_recipe():
    base = ImageRecipe(mirror="http://a/debian")
    cached = ImageRecipe(mirror="http://a/debian", apt_cache="10.166.0.1:3149")
    elsewhere = ImageRecipe(mirror="http://a/debian", apt_cache="10.1.0.1:3149")
    assert len({base.digest, cached.digest, elsewhere.digest}) == 3
    ca = ImageRecipe(mirror="http://a/debian", extra_cas=(("proxy.crt", b"PEM one"),))
    assert ca.digest != base.digest
    assert ca.digest != ImageRecipe(mirror="http://a/debian", extra_cas=(("proxy.crt", b"PEM two"),)).digest


def test_host_extra_cas_are_found_at_any_depth(tmp_path: Path):
    from castelet.local.image import host_extra_cas

    (tmp_path / "corp").mkdir()
    (tmp_path / "a.crt").write_bytes(b"A")
    (tmp_path / "corp" / "b.crt").write_bytes(b"B")
    (tmp_path / "notes.txt").write_text("not a certificate")
    assert host_extra_cas(tmp_path) == {"a.crt": b"A", "corp_b.crt": b"B"}
    assert host_extra_cas(tmp_path / "absent") == {}


def test_apt_proxy_hook_uses_the_cache_only_while_it_answers(tmp_path: Path):
    """apt's Proxy-Auto-Detect hook, run for real: the cache's URL while something listens there,
    DIRECT once it is gone (an instance never depends on the host's cache)."""
    import socket
    import subprocess

    from castelet.local.image import apt_proxy_detect_script

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    hook = tmp_path / "apt-proxy"
    hook.write_text(apt_proxy_detect_script(f"127.0.0.1:{port}"))
    hook.chmod(0o755)
    answer = subprocess.run([str(hook), "http://deb.debian.org/debian"], capture_output=True, text=True, check=True)
    assert answer.stdout == f"http://127.0.0.1:{port}\n"
    listener.close()
    answer = subprocess.run([str(hook), "http://deb.debian.org/debian"], capture_output=True, text=True, check=True)
    assert answer.stdout == "DIRECT\n"


def test_image_caches_exactly_the_bootstrap_packages(repo_root: Path):
    """The local image pre-installs castelet-bootstrap's packages: the same list as the Terraform
    configuration module's default (a cache of what every instance installs, never more)."""
    import re

    from castelet.local.image import BOOTSTRAP_PACKAGES

    variables = (repo_root / "terraform-modules/common/configuration/variables.tf").read_text()
    block = variables[variables.index('variable "puppet_packages"'):]
    default = block[block.index("default = ["):block.index("]")]
    assert tuple(re.findall(r'"([a-z0-9][a-z0-9+.-]+)"', default)) == BOOTSTRAP_PACKAGES


def test_image_recipe_changes_with_what_it_preinstalls():
    base = ImageRecipe(mirror="http://a/debian")
    assert base.digest != ImageRecipe(mirror="http://a/debian", preinstalled=((), ())).digest


def test_pool_file_system_is_a_journaled_ext4_in_a_sparse_file(tmp_path: Path):
    from castelet.local.pool import LABEL, PoolFilesystem, has_journal

    pool = PoolFilesystem(image=tmp_path / "pool.ext4", source=tmp_path / "pool")
    pool.create(size_gib=1)
    assert pool.exists() and not (tmp_path / "pool.ext4.partial").exists()
    assert has_journal(pool.image), "without a journal ext4 scans past recently deleted inodes (decision 46)"
    assert pool.image.stat().st_size == 1 << 30
    assert pool.image.stat().st_blocks * 512 < 256 << 20, "the file is sparse"
    label = subprocess.run(["e2label", str(pool.image)], capture_output=True, text=True, check=True).stdout
    assert label.strip() == LABEL
    assert not pool.mounted() and pool.usage() is None


def test_mount_source_reads_the_topmost_mount_and_unescapes_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from castelet.local import pool as pool_module

    place = tmp_path / "a dir"
    place.mkdir()
    escaped = str(place).replace(" ", "\\040")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        f"90 27 7:0 / {escaped} rw,relatime - ext4 /dev/loop0 rw\n"
        f"91 90 254:0 /x {escaped} rw,relatime shared:1 - ext4 /dev/vda rw\n")
    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: real_read(
        mountinfo if str(self) == "/proc/self/mountinfo" else self, *a, **k))
    assert pool_module.mount_source(place) == "/dev/vda"  # the bind mount over the loop mount
    assert pool_module.mount_source(tmp_path) is None


def test_only_an_empty_pool_is_moved_onto_its_own_file_system(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    calls: list[tuple[str, ...]] = []
    shown = ("config:\n  source: /var/lib/lxd/storage-pools/castelet\nused_by:\n"
             "- /1.0/instances/keep-me\n- /1.0/profiles/castelet\n")

    def fake_lxc(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, shown if args[:2] == ("storage", "show") else "", "")

    monkeypatch.setattr(cloud, "lxc", fake_lxc)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    messages: list[str] = []
    cloud._ensure_pool(messages.append)
    assert calls == [("storage", "show", cloud.POOL)], "a pool in use is neither deleted nor changed"
    assert "kept as it is" in messages[0] and not (tmp_path / "castelet/local/pool.ext4").exists()


def test_images_of_several_releases_are_built_at_the_same_time_then_imported(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """`castelet local setup --release 13 --release 12` on a new machine: the two debootstraps
    overlap (each waits on the mirror and the disk about half of its time), and each image is
    imported only once every build has finished; an image already current is not rebuilt."""
    import threading

    from castelet.releases import RELEASES

    monkeypatch.setattr(cloud, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(cloud, "image_recipe", lambda debian: ImageRecipe(mirror="http://m", release=debian))
    current = {RELEASES["13"].local_image: None, RELEASES["12"].local_image: None}
    monkeypatch.setattr(cloud, "_image_current", lambda alias: current.get(alias))
    both_building = threading.Barrier(2, timeout=10)
    events: list[str] = []

    def build(recipe: ImageRecipe, images: Path, log: Path) -> Path:
        both_building.wait()  # a BrokenBarrierError here: the builds ran one after the other
        tarball = images / f"debian-{recipe.release.major}-{recipe.digest}.tar"
        tarball.write_bytes(b"")
        events.append(f"built {recipe.release.major}")
        return tarball

    def lxc(*args: str, **_: object) -> subprocess.CompletedProcess[str]:
        events.append(" ".join(args[:2]) + f" {args[-1]}")
        return subprocess.CompletedProcess(list(args), 0, "", "")

    monkeypatch.setattr(cloud, "build", build)
    monkeypatch.setattr(cloud, "lxc", lxc)
    cloud._ensure_images(lambda message: None, (RELEASES["13"], RELEASES["12"]))
    assert sorted(events[:2]) == ["built 12", "built 13"]
    assert events[2:] == [f"image import {RELEASES['13'].local_image}", f"image import {RELEASES['12'].local_image}"]

    events.clear()
    current[RELEASES["13"].local_image] = ImageRecipe(mirror="http://m", release=RELEASES["13"]).digest
    both_building = threading.Barrier(1)
    cloud._ensure_images(lambda message: None, (RELEASES["13"], RELEASES["12"]))
    assert events == ["built 12", f"image import {RELEASES['12'].local_image}"]
