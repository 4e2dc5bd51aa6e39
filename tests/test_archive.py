import io
import tarfile
import zipfile

import pytest

from asr.data.archive import UnsafeArchiveError, download, safe_extract, verify_checksum


def make_tar(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"data") if m.isfile() else None)


def file_member(name, size=4):
    m = tarfile.TarInfo(name)
    m.size = size
    return m


def test_good_tar_extracts(tmp_path):
    link = tarfile.TarInfo("corpus/latest")
    link.type, link.linkname = tarfile.SYMTYPE, "a.flac"
    make_tar(tmp_path / "ok.tar.gz", [file_member("corpus/a.flac"), link])
    names = safe_extract(tmp_path / "ok.tar.gz", tmp_path / "out")
    assert (tmp_path / "out" / "corpus" / "a.flac").read_bytes() == b"data"
    assert "corpus/latest" in names


@pytest.mark.parametrize("member,match", [
    (file_member("../../evil"), "outside"),
    (file_member("corpus/../../evil"), "outside"),
    (file_member("/etc/evil"), "absolute"),
])
def test_escaping_tar_members_are_refused(tmp_path, member, match):
    make_tar(tmp_path / "bad.tar.gz", [file_member("corpus/ok.txt"), member])
    with pytest.raises(UnsafeArchiveError, match=match):
        safe_extract(tmp_path / "bad.tar.gz", tmp_path / "out")
    assert not (tmp_path / "out" / "corpus" / "ok.txt").exists()  # checked before writing anything
    assert not (tmp_path / "evil").exists()


def test_links_out_and_devices_are_refused(tmp_path):
    link = tarfile.TarInfo("corpus/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    make_tar(tmp_path / "link.tar", [link])
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(tmp_path / "link.tar", tmp_path / "out")
    hard = tarfile.TarInfo("corpus/h")
    hard.type, hard.linkname = tarfile.LNKTYPE, "../../outside"
    make_tar(tmp_path / "hard.tar", [hard])
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(tmp_path / "hard.tar", tmp_path / "out")
    dev = tarfile.TarInfo("corpus/null")
    dev.type = tarfile.CHRTYPE
    make_tar(tmp_path / "dev.tar", [dev])
    with pytest.raises(UnsafeArchiveError, match="device"):
        safe_extract(tmp_path / "dev.tar", tmp_path / "out")


def test_zip_slip_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("ok.txt", "x")
        zf.writestr("../evil.txt", "x")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_checksums_and_resumed_download(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"0123456789" * 1000)
    import hashlib
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    verify_checksum(src, md5)
    with pytest.raises(ValueError, match="checksum mismatch"):
        verify_checksum(src, "0" * 32)
    dest = tmp_path / "dl" / "file.bin"
    dest.parent.mkdir()
    (dest.parent / "file.bin.part").write_bytes(b"0123456789" * 10)  # an interrupted download
    out = download(src.as_uri(), dest, md5)  # file:// has no ranges: restarts cleanly
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(ValueError, match="checksum"):
        download(src.as_uri(), tmp_path / "dl" / "other.bin", "f" * 32)
    assert not (tmp_path / "dl" / "other.bin").exists()
