"""Task bundles unpack safely (zip slip, bombs, lying headers, links refused, nothing left
behind), and every runtime builds and runs a hello world with the real toolchains."""

from __future__ import annotations

import asyncio
import io
import stat
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from conftest import unavailable

from pyconnector_server.errors import APIError
from pyconnector_server.tasks import runtimes
from pyconnector_server.tasks.bundle import unpack_zip
from pyconnector_server.tasks.runtimes import RUNTIMES, build, check, command

FIELD = "dependency_zip"
MiB = 1 << 20


def make_zip(*entries: tuple[str | zipfile.ZipInfo, bytes],
             compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name or ZipInfo, data) entries, in order, duplicates allowed."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted here
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return buf.getvalue()


def unix_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode is in the high half of external_attr
    info.external_attr = mode << 16
    return info


def refused(data: bytes, dest: Path, **limits: int) -> APIError:
    """unpack_zip's 400, after checking it names the field and left dest as it was."""
    before = sorted(dest.rglob("*")) if dest.exists() else None
    with pytest.raises(APIError) as caught:
        unpack_zip(data, dest, FIELD, **limits)
    assert caught.value.status == 400
    assert caught.value.field == FIELD
    assert caught.value.message.startswith(f"{FIELD}: ")
    after = sorted(dest.rglob("*")) if dest.exists() else None
    assert after == before, "a refused archive left files behind"
    return caught.value


def files_under(dest: Path) -> dict[str, bytes]:
    return {p.relative_to(dest).as_posix(): p.read_bytes()
            for p in dest.rglob("*") if p.is_file()}


# -- good archives ---------------------------------------------------------------------------

def test_a_good_zip_unpacks_with_its_directories(tmp_path: Path) -> None:
    dest = tmp_path / "task"
    script = unix_entry("bin/run.sh", stat.S_IFREG | 0o755)
    data = make_zip(("lib/", b""), ("lib/util.py", b"X = 1\n"), ("lib/deep/er/d.txt", b"d"),
                    ("./top.py", b"import lib\n"), (script, b"#!/bin/sh\necho hi\n"))
    got = unpack_zip(data, dest, FIELD, max_bytes=MiB, max_entries=10)
    assert got == ["lib/util.py", "lib/deep/er/d.txt", "top.py", "bin/run.sh"]
    assert files_under(dest) == {"lib/util.py": b"X = 1\n", "lib/deep/er/d.txt": b"d",
                                 "top.py": b"import lib\n", "bin/run.sh": b"#!/bin/sh\necho hi\n"}
    assert (dest / "bin/run.sh").stat().st_mode & 0o111, "the executable bit was lost"
    assert not (dest / "lib/util.py").stat().st_mode & 0o111


def test_a_zip_is_read_from_bytes_a_file_or_a_path(tmp_path: Path) -> None:
    data = make_zip(("a.txt", b"a"))
    (tmp_path / "b.zip").write_bytes(data)
    assert unpack_zip(data, tmp_path / "1", FIELD, max_bytes=10, max_entries=1) == ["a.txt"]
    with open(tmp_path / "b.zip", "rb") as f:
        assert unpack_zip(f, tmp_path / "2", FIELD, max_bytes=10, max_entries=1) == ["a.txt"]
    assert unpack_zip(tmp_path / "b.zip", tmp_path / "3", FIELD,
                      max_bytes=10, max_entries=1) == ["a.txt"]


def test_a_zip_merges_into_existing_directories_but_replaces_no_file(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "main.py").write_text("print(1)\n")
    assert unpack_zip(make_zip(("lib/x.py", b"x")), tmp_path, FIELD,
                      max_bytes=10, max_entries=1) == ["lib/x.py"]
    err = refused(make_zip(("new.py", b"n"), ("main.py", b"evil")), tmp_path)
    assert "'main.py'" in err.message and "already" in err.message
    assert (tmp_path / "main.py").read_text() == "print(1)\n"
    err = refused(make_zip(("main.py/x", b"n")), tmp_path)
    assert "directory" in err.message


# -- zip slip --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, why", [
    ("../evil.py", "escapes the task's directory"),
    ("lib/../../evil.py", "escapes the task's directory"),
    ("lib/..", "escapes the task's directory"),
    ("/etc/evil.py", "absolute"),
    ("//server/share/evil.py", "absolute"),
    ("C:/evil.py", "absolute"),
    ("c:evil.py", "absolute"),
    ("..\\evil.py", "backslash"),
    ("lib\\..\\..\\evil.py", "backslash"),
    ("C:\\Windows\\evil.py", "backslash"),
])
def test_names_that_climb_out_are_refused(tmp_path: Path, name: str, why: str) -> None:
    dest = tmp_path / "task"
    # a good entry first: the whole archive is checked before anything is written
    err = refused(make_zip(("ok.py", b"ok"), (name, b"evil")), dest)
    assert err.message.startswith(f"{FIELD}: entry '{name}' ") and why in err.message
    assert not dest.exists() and not (tmp_path / "evil.py").exists()


def test_the_brief_message_for_a_parent_entry(tmp_path: Path) -> None:
    err = refused(make_zip(("../evil.py", b"evil")), tmp_path / "t")
    assert err.message == "dependency_zip: entry '../evil.py' escapes the task's directory"


def test_a_nul_in_a_name_is_refused(tmp_path: Path) -> None:
    data = make_zip(("ok.py_/../../evil", b"x")).replace(b"ok.py_/", b"ok.py\0/")
    err = refused(data, tmp_path / "t")
    assert "NUL" in err.message


def test_a_name_through_a_link_already_in_dest_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "task"
    dest.mkdir()
    (dest / "lib").symlink_to(outside)
    err = refused(make_zip(("lib/evil.py", b"evil")), dest)
    assert "escapes" in err.message
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("mode, why", [
    (stat.S_IFLNK | 0o777, "symbolic link"),
    (stat.S_IFIFO | 0o644, "not a regular file"),
    (stat.S_IFCHR | 0o644, "not a regular file"),
    (stat.S_IFSOCK | 0o644, "not a regular file"),
])
def test_links_and_other_special_entries_are_refused(tmp_path: Path, mode: int,
                                                     why: str) -> None:
    dest = tmp_path / "task"
    err = refused(make_zip(("ok.py", b"ok"), (unix_entry("lib", mode), b"/etc/passwd"),
                           ("lib/evil.py", b"evil")), dest)
    assert "entry 'lib'" in err.message and why in err.message
    assert not dest.exists()


def patch_headers(data: bytes, *, size: int | None = None, crc: int | None = None,
                  flags: int | None = None) -> bytes:
    """The zip with every entry's local and central headers saying ``size`` uncompressed
    bytes, CRC ``crc`` and general purpose ``flags`` (whichever are given)."""
    out = bytearray(data)
    # local file header: flags at 6, CRC at 14, uncompressed size at 22;
    # central directory header: flags at 8, CRC at 16, uncompressed size at 24
    for sig, flag_at, crc_at, size_at in ((b"PK\x03\x04", 6, 14, 22), (b"PK\x01\x02", 8, 16, 24)):
        at = out.find(sig)
        while at >= 0:
            if flags is not None:
                struct.pack_into("<H", out, at + flag_at, flags)
            if crc is not None:
                struct.pack_into("<I", out, at + crc_at, crc)
            if size is not None:
                struct.pack_into("<I", out, at + size_at, size)
            at = out.find(sig, at + 4)
    return bytes(out)


def test_encrypted_entries_are_refused(tmp_path: Path) -> None:
    err = refused(patch_headers(make_zip(("secret.py", b"x")), flags=0x1), tmp_path / "t")
    assert "entry 'secret.py' is encrypted" in err.message


# -- bombs and limits ------------------------------------------------------------------------

def test_a_bomb_over_the_limit_is_refused_by_its_headers(tmp_path: Path) -> None:
    data = make_zip(("zeros.bin", bytes(10 * MiB)))
    assert len(data) < 20_000  # it compresses to almost nothing
    err = refused(data, tmp_path / "t", max_bytes=MiB)
    assert "10 MiB" in err.message and "limit of 1 MiB" in err.message


def test_many_entries_add_up_against_the_limit(tmp_path: Path) -> None:
    data = make_zip(*((f"part{i}.bin", bytes(300_000)) for i in range(4)))
    err = refused(data, tmp_path / "t", max_bytes=MiB)
    assert "limit of 1 MiB" in err.message
    # exactly at the limit is fine
    assert len(unpack_zip(data, tmp_path / "ok", FIELD, max_bytes=1_200_000,
                          max_entries=4)) == 4


def test_a_header_that_lies_about_the_size_gets_no_further(tmp_path: Path) -> None:
    # 10 MiB of zeros whose headers claim 1000 bytes: the header check passes, the
    # extraction stops at 1000 bytes, the CRC of those does not match, nothing is left.
    data = patch_headers(make_zip(("zeros.bin", bytes(10 * MiB))), size=1000)
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].file_size == 1000
    dest = tmp_path / "t"
    err = refused(data, dest, max_bytes=MiB)
    assert "damaged" in err.message and "zeros.bin" in err.message
    assert not dest.exists()


def test_a_lie_with_a_matching_crc_still_writes_no_more_than_the_header_says(
        tmp_path: Path) -> None:
    # The lie made consistent (the CRC of the first 1000 bytes): what is written stops at
    # the 1000 bytes the header declares, never the 10 MiB the data inflates to.
    data = patch_headers(make_zip(("zeros.bin", bytes(10 * MiB))), size=1000,
                         crc=zlib.crc32(bytes(1000)))
    dest = tmp_path / "t"
    assert unpack_zip(data, dest, FIELD, max_bytes=MiB, max_entries=1) == ["zeros.bin"]
    assert (dest / "zeros.bin").stat().st_size == 1000


def test_a_damaged_archive_leaves_nothing_behind(tmp_path: Path) -> None:
    # the second entry's data is corrupted after the first has been written
    good = b"first file " * 1000
    data = bytearray(make_zip(("a.txt", good), ("b.txt", b"second " * 1000)))
    second = data.find(b"PK\x03\x04", 4)
    data[second + 60:second + 70] = b"\xff" * 10  # into b.txt's deflate stream
    dest = tmp_path / "t"
    err = refused(bytes(data), dest)
    assert "damaged" in err.message
    assert not dest.exists()


def test_too_many_entries_are_refused(tmp_path: Path) -> None:
    entries = [(f"f{i}.txt", b"x") for i in range(11)]
    err = refused(make_zip(*entries), tmp_path / "t", max_entries=10)
    assert "11 entries" in err.message and "limit of 10" in err.message
    assert len(unpack_zip(make_zip(*entries[:10]), tmp_path / "ok", FIELD,
                          max_bytes=100, max_entries=10)) == 10


@pytest.mark.parametrize("data", [b"", b"hello", b"PK\x03\x04" + bytes(100)],
                         ids=["empty", "text", "a-local-header-only"])
def test_not_a_zip_is_refused(tmp_path: Path, data: bytes) -> None:
    err = refused(data, tmp_path / "t")
    assert "not a zip archive" in err.message


def test_a_truncated_zip_is_refused(tmp_path: Path) -> None:
    data = make_zip(("a.txt", b"a" * 5000))
    err = refused(data[: len(data) // 2], tmp_path / "t")
    assert "not a zip archive" in err.message


def test_a_long_name_is_refused(tmp_path: Path) -> None:
    err = refused(make_zip(("d/" + "x" * 300 + ".py", b"x")), tmp_path / "t")
    assert "longer than" in err.message


@pytest.mark.parametrize("first, second", [
    ("a.py", "a.py"), ("lib/a.py", "lib//a.py"), ("a.py", "./a.py"),
])
def test_duplicate_names_are_refused(tmp_path: Path, first: str, second: str) -> None:
    err = refused(make_zip((first, b"1"), (second, b"2")), tmp_path / "t")
    assert "twice" in err.message and f"entry '{second}'" in err.message


@pytest.mark.parametrize("first, second", [("lib", "lib/a.py"), ("lib/a.py", "lib"),
                                           ("lib/", "lib")])
def test_a_name_both_file_and_directory_is_refused(tmp_path: Path, first: str,
                                                   second: str) -> None:
    err = refused(make_zip((first, b""), (second, b"2")), tmp_path / "t")
    assert "directory" in err.message and "file" in err.message


# -- runtimes: check and command -------------------------------------------------------------

def test_the_runtimes_and_their_extensions() -> None:
    assert set(RUNTIMES) == {"py", "js", "java", "c", "cpp", "spark"}
    assert RUNTIMES["java"].extensions == (".java", ".jar")
    assert RUNTIMES["cpp"].extensions == (".cpp", ".cc", ".cxx")
    assert RUNTIMES["spark"].extensions == (".py", ".jar")
    assert RUNTIMES["py"].toolchain() == {"python": sys.executable}


def test_an_unknown_runtime_is_a_400_naming_the_field_and_the_known_ones() -> None:
    with pytest.raises(APIError) as caught:
        check("cobol", "main.cob")
    assert (caught.value.status, caught.value.field) == (400, "runTime")
    assert "'cobol'" in caught.value.message
    assert "py, js, java, c, cpp, spark" in caught.value.message
    with pytest.raises(APIError) as caught:
        check("cobol", "main.cob", field="deploy.runTime")
    assert caught.value.field == "deploy.runTime"
    with pytest.raises(APIError) as caught:
        command("cobol", "main.cob", [])
    assert caught.value.field == "runTime"


@pytest.mark.parametrize("rt, filename", [
    ("py", "main.js"), ("js", "main.py"), ("java", "Main.class"), ("c", "main.cpp"),
    ("cpp", "main.c"), ("spark", "job.R"), ("py", "main"), ("py", "main.py.txt"),
])
def test_a_file_the_runtime_does_not_take_is_a_400_naming_filename(rt: str,
                                                                   filename: str) -> None:
    with pytest.raises(APIError) as caught:
        check(rt, filename)
    assert (caught.value.status, caught.value.field) == (400, "filename")
    assert f"'{filename}'" in caught.value.message and f"'{rt}'" in caught.value.message
    assert " or ".join(RUNTIMES[rt].extensions) in caught.value.message


@pytest.mark.parametrize("filename", ["-cimport os.py", "lib/main.py", "../main.py",
                                      ".main.py", "", "a\\b.py", " main.py"])
def test_a_file_name_that_is_not_plain_is_a_400(filename: str) -> None:
    with pytest.raises(APIError) as caught:
        check("py", filename)
    assert (caught.value.status, caught.value.field) == (400, "filename")


def test_the_extension_is_matched_without_regard_to_case() -> None:
    assert check("py", "MAIN.PY").name == "py"
    assert check("js", "main.mjs").name == "js"


def test_a_missing_toolchain_is_a_400_naming_program_and_runtime(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: nothing is installed
    with pytest.raises(APIError) as caught:
        check("java", "Main.java")
    assert (caught.value.status, caught.value.field) == (400, "runTime")
    assert caught.value.message == ("runTime: runtime 'java' needs javac, which is not "
                                    "installed on this platform")
    assert check("py", "main.py").name == "py"  # the platform's own Python is always there


def test_spark_check_and_command_shape() -> None:
    submit = runtimes.find_program("spark-submit")
    if submit is None:
        with pytest.raises(APIError) as caught:
            check("spark", "job.py")
        assert (caught.value.status, caught.value.field) == (400, "runTime")
        assert "runtime 'spark' needs spark-submit" in caught.value.message
    else:
        assert check("spark", "job.py").name == "spark"
    argv = command("spark", "job.py", ["--day", "2024-01-01"])
    assert argv == (submit or "spark-submit", "--master", "local[2]", "job.py",
                    "--day", "2024-01-01")
    assert command("spark", "job.jar", [])[1:] == ("--master", "local[2]", "job.jar")


def test_command_lines() -> None:
    java = RUNTIMES["java"].tools()["java"]
    assert command("py", "main.py", ["a", "b c"]) == (sys.executable, "main.py",
                                                      "a", "b c")
    assert command("java", "Hello.java", ["x"]) == (java, "-cp", "classes:.", "Hello", "x")
    assert command("java", "app.jar", ["x"]) == (java, "-jar", "app.jar", "x")
    assert command("c", "main.c", ["1"]) == ("./main", "1")
    assert command("cpp", "main.cc", []) == ("./main",)
    assert command("js", "main.mjs", [])[1:] == ("main.mjs",)


# -- runtimes: real builds and runs ----------------------------------------------------------

HELLO = {
    "py": ("hello.py", "import sys\nprint('hello', *sys.argv[1:])\n"),
    "js": ("hello.js", "console.log(['hello', ...process.argv.slice(2)].join(' '));\n"),
    "java": ("Hello.java", "public class Hello {\n  public static void main(String[] a) {\n"
                           "    System.out.println(\"hello \" + String.join(\" \", a));\n  }\n}\n"),
    "c": ("hello.c", "#include <stdio.h>\n#include <math.h>\n"
                     "int main(int c, char **v) {\n  printf(\"hello\");\n"
                     "  for (int i = 1; i < c; i++) printf(\" %s\", v[i]);\n"
                     "  printf(\"\\n\");\n  return sqrt(0.0) != 0.0;\n}\n"),
    "cpp": ("hello.cpp", "#include <iostream>\n#include <string_view>\n"
                         "int main(int c, char **v) {\n  std::cout << std::string_view(\"hello\");\n"
                         "  for (int i = 1; i < c; i++) std::cout << ' ' << v[i];\n"
                         "  std::cout << '\\n';\n}\n"),
}


def need_toolchain(rt: str) -> None:
    for program, where in RUNTIMES[rt].toolchain().items():
        if where is None:
            unavailable(f"{program} is not installed (runtime '{rt}')")


@pytest.mark.parametrize("rt", list(HELLO))
def test_each_runtime_builds_and_runs_hello_world(tmp_path: Path, rt: str) -> None:
    need_toolchain(rt)
    filename, source = HELLO[rt]
    (tmp_path / filename).write_text(source)
    log = tmp_path / "logs" / "build.log"
    assert check(rt, filename).name == rt
    asyncio.run(build(rt, filename, tmp_path, log))
    out = subprocess.run(command(rt, filename, ["from", rt]), cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"hello from {rt}\n"
    if RUNTIMES[rt].compile(RUNTIMES[rt].tools(), filename) is not None:
        assert log.read_text().startswith("$ "), "the compile is not in the build log"


def test_a_jar_runs_without_compiling(tmp_path: Path) -> None:
    need_toolchain("java")
    filename, source = HELLO["java"]
    (tmp_path / filename).write_text(source)
    subprocess.run(["javac", "-d", ".", filename], cwd=tmp_path, check=True, timeout=120)
    subprocess.run(["jar", "--create", "--file", "hello.jar", "--main-class", "Hello",
                    "Hello.class"], cwd=tmp_path, check=True, timeout=120)
    (tmp_path / "Hello.class").unlink()
    log = tmp_path / "build.log"
    asyncio.run(build("java", "hello.jar", tmp_path, log))
    assert not log.exists(), "a jar was compiled"
    out = subprocess.run(command("java", "hello.jar", ["jar"]), cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout == "hello jar\n", out.stderr


BROKEN = {
    "java": ("Broken.java", "public class Broken { void f() { int x = \"s\"; } }\n",
             "incompatible types"),
    "c": ("broken.c", "int main(void) { return undeclared_thing; }\n", "undeclared_thing"),
    "cpp": ("broken.cpp", "int main() { std::vector<int> v; }\n", "vector"),
}


@pytest.mark.parametrize("rt", list(BROKEN))
def test_a_compile_error_is_a_400_naming_filename_with_the_compilers_words(
        tmp_path: Path, rt: str) -> None:
    need_toolchain(rt)
    filename, source, said = BROKEN[rt]
    (tmp_path / filename).write_text(source)
    log = tmp_path / "build.log"
    log.write_text("earlier step\n")
    with pytest.raises(APIError) as caught:
        asyncio.run(build(rt, filename, tmp_path, log))
    assert (caught.value.status, caught.value.field) == (400, "filename")
    assert caught.value.message.startswith("compile failed: ")
    assert said in caught.value.message and "error" in caught.value.message
    assert "earlier step" not in caught.value.message  # only this compile's output
    assert log.read_text().startswith("earlier step\n$ ")  # appended, the rest kept
    assert said in log.read_text()


def test_a_compile_that_runs_too_long_is_stopped(tmp_path: Path) -> None:
    need_toolchain("cpp")
    # a constant evaluated at compile time in billions of steps: g++ would take minutes.
    # Two nested loops: each stays under g++'s 262,144-iteration limit per loop (a single
    # loop over it is an error at once), and together they stay under its operations
    # limit long enough.
    source = ("constexpr long spin() { long s = 0;\n"
              "  for (long i = 0; i < 200000L; i++)\n"
              "    for (long j = 0; j < 200000L; j++) s += (i ^ j) & 1;\n  return s; }\n"
              "static_assert(spin() > 0);\nint main() {}\n")
    (tmp_path / "slow.cpp").write_text(source)
    with pytest.raises(APIError) as caught:
        asyncio.run(build("cpp", "slow.cpp", tmp_path, tmp_path / "log", timeout=0.5))
    assert caught.value.field == "filename"
    assert "longer than 0.5 s" in caught.value.message
