"""One sandboxed test run: bubblewrap namespaces, resource limits, a watchdog, and the runner's events.

:func:`run_tests` starts ``python _grading_runner.py`` (:mod:`.runner`) in a working copy and follows it.
With a :class:`Sandbox` (``bwrap``, Debian's ``bubblewrap``) the run gets

- its own process tree (PID namespace; the whole tree is killed when the run is stopped or the grader
  exits), its own network namespace (loopback only: no network), IPC and host name;
- a root file system of read-only binds only: ``/usr`` (and ``/bin``, ``/lib``... as on the host), a few
  files of ``/etc``, the Python environment (its prefixes and ``sys.path`` folders outside the
  instructor's checkout), the data root at ``/data``, and the working copy at ``/grading``; ``/proc``
  of its own processes, a minimal ``/dev``, and a writable ``/tmp`` of ``tmp_mb`` MB in memory, its
  only writable place. The instructor's checkout, the submissions, the output folder and the other
  working copies are not in it;
- limits (:class:`Limits`): address space per process, processes and threads, file size, open files,
  CPU time, no core dumps, set by the runner before pytest starts; started as root, the runner then
  becomes an unprivileged user of its own (``uid``), so that the process limit counts only its
  processes; otherwise the sandbox has its own user namespace;
- a seccomp filter that refuses new namespaces (``unshare``, ``setns``, ``clone`` with namespace flags),
  so a submission cannot mount file systems of its own (memory the limits would not see);
- a watchdog here that stops the run (SIGKILL to the tree) past ``timeout_s`` in all, past
  ``test_timeout_s`` or :data:`CPU_GRACE_S` beyond ``test_cpu_s`` of CPU time on one test, or past
  ``memory_gb`` of memory (proportional set sizes, summed over its processes, which it finds through
  ``/proc/PID/task/TID/children``), looking every :data:`POLL_S`. The runner itself stops a test at
  ``test_cpu_s`` of CPU time (a signal, which the code may block: then the watchdog stops the run); a
  stopped run is started again without that test by the caller (:mod:`.grade`).

Without a sandbox (``--unsafe``) the same limits are set (but the process count) and the watchdog runs,
but the code runs with the grader's rights and sees its files.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

POLL_S = 0.2
CPU_GRACE_S = 2.0
"""CPU seconds a test may run past ``test_cpu_s`` before the watchdog stops the run (the runner's own
stop comes first when the code lets it)."""
MB = 2**20
GB = 2**30
ADDRESS_SPACE_HEADROOM_GB = 8
"""Each process may map this much beyond ``memory_gb``: torch alone reserves about 3 GB it never uses."""
MAX_EVENT_BYTES = 8 * MB
"""Events beyond this many bytes are dropped (a run cannot flood the grader)."""
SANDBOX_ROOT = "/grading"
SANDBOX_DATA = "/data"
"""Where a sandbox sees the data root (``COURSE_DATA_DIR``)."""
SANDBOX_UID = 65534
"""The user inside a sandbox with its own user namespace (``nobody``)."""
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group", "nsswitch.conf",
             "alternatives")
TOP_FOLDERS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
RUNNER = "_grading_runner.py"


@dataclass(frozen=True)
class Limits:
    """What one submission may use: wall-clock seconds for all its test runs together and for one test,
    CPU seconds for one test, memory of all its processes together (GB), processes and threads, MB of its
    ``/tmp``, MB of any file it writes, open files."""

    timeout_s: float = 600.0
    test_timeout_s: float = 120.0
    test_cpu_s: float = 30.0
    memory_gb: float = 4.0
    processes: int = 64
    tmp_mb: int = 256
    file_mb: int = 64
    open_files: int = 256

    def __post_init__(self) -> None:
        bad = [f"{k}={v!r}" for k, v in asdict(self).items() if not v > 0]
        if bad:
            raise ValueError(f"limits {', '.join(bad)} are not valid; every limit must be > 0")

    def rlimits(self) -> dict[str, int]:
        """The resource limits the runner sets on itself (soft = hard)."""
        return {"RLIMIT_AS": int((self.memory_gb + ADDRESS_SPACE_HEADROOM_GB) * GB),
                "RLIMIT_NPROC": self.processes, "RLIMIT_FSIZE": self.file_mb * MB,
                "RLIMIT_NOFILE": self.open_files, "RLIMIT_CORE": 0, "RLIMIT_CPU": int(self.timeout_s) + 1}


# seccomp: (audit arch, x32 bit or 0, syscall numbers of unshare, setns, clone, clone3)
_ARCHES = {"x86_64": (0xC000003E, 0x40000000, 272, 308, 56, 435),
           "aarch64": (0xC00000B7, 0, 97, 268, 220, 435)}
_CLONE_NEW = 0x7E020080  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
_EPERM, _ENOSYS = 1, 38


def seccomp_filter(machine: str | None = None) -> bytes:
    """A classic-BPF seccomp program (``struct sock_filter[]``) that fails ``unshare`` and ``setns``
    with EPERM, ``clone`` with a namespace flag with EPERM, and ``clone3`` with ENOSYS (the C library
    then uses ``clone``); other architectures' and x32 calls fail with EPERM. ``ValueError`` on an
    architecture it does not know."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        raise ValueError(f"the grading sandbox's seccomp filter knows {sorted(_ARCHES)}, not {machine!r}")
    arch, x32, unshare, setns, clone, clone3 = _ARCHES[machine]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, deny, enosys = 0x7FFF0000, 0x00050000 | _EPERM, 0x00050000 | _ENOSYS
    program = [  # (code, jump if true, jump if false, k); jumps count the instructions skipped
        (ld, 0, 0, 4),            # 0 arch
        (jeq, 1, 0, arch),        # 1 -> 3
        (ret, 0, 0, deny),        # 2
        (ld, 0, 0, 0),            # 3 syscall number
        (jge, 8, 0, x32 or 0xFFFFFFFF),  # 4 x32 -> 13
        (jeq, 7, 0, unshare),     # 5 -> 13
        (jeq, 6, 0, setns),       # 6 -> 13
        (jeq, 4, 0, clone3),      # 7 -> 12
        (jeq, 1, 0, clone),       # 8 -> 10
        (ret, 0, 0, allow),       # 9
        (ld, 0, 0, 16),           # 10 clone's flags (low half of the first argument)
        (jset, 1, 2, _CLONE_NEW),  # 11 -> 13 or 14
        (ret, 0, 0, enosys),      # 12
        (ret, 0, 0, deny),        # 13
        (ret, 0, 0, allow),       # 14
    ]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def _under(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


@dataclass(frozen=True)
class Sandbox:
    """bubblewrap with read-only binds of ``read_only`` (host paths, bound at the same place); started
    as root (``as_root``) it keeps only the capabilities to change user, for the runner to drop them."""

    read_only: tuple[str, ...]
    as_root: bool
    data_dir: str | None = None
    """The data root, bound read-only at :data:`SANDBOX_DATA`."""

    @classmethod
    def for_environment(cls, hidden: list[Path], data_dir: Path | None = None) -> Sandbox:
        """The sandbox for this Python: every folder it imports from, except those inside ``hidden``
        (the instructor's checkout), and the data root ``data_dir``; ``ValueError`` if one of ``hidden``
        lies inside a folder it must bind (a sandbox would see it), or when bubblewrap is missing."""
        if shutil.which("bwrap") is None:
            raise ValueError("bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)")
        hidden = [p.resolve() for p in hidden]
        prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                 sys.base_exec_prefix)}
        # packages installed elsewhere (user site, .pth files); not the current folder or PYTHONPATH
        mine = {Path.cwd().resolve(), *(Path(p).resolve() for p in os.environ.get("PYTHONPATH", "").split(":")
                                        if p)}
        imports = {Path(p).resolve() for p in sys.path if p and Path(p).is_absolute()} - mine
        wanted = prefixes | {p for p in imports if not _under(p, hidden)}  # a venv may sit in the checkout
        wanted |= {Path("/etc") / name for name in ETC_FILES}
        wanted = {p for p in wanted if p.exists() and not _under(p, [Path("/usr")])}
        roots = sorted(p for p in wanted if not any(q in p.parents for q in wanted))
        under_tmp = [str(r) for r in roots if Path("/tmp") in r.parents]
        if under_tmp:
            raise ValueError(f"the Python environment {under_tmp[0]} is under /tmp, which a sandbox replaces "
                             "by its own; install it elsewhere")
        data = data_dir.resolve() if data_dir is not None else None
        for h in hidden:
            inside = [str(r) for r in [*roots, *([data] if data else [])] if r in h.parents or r == h]
            if inside:
                raise ValueError(f"{h} is inside {inside[0]}, which every sandbox must read (the Python "
                                 "environment or the data root); move it elsewhere")
        return cls(("/usr", *map(str, roots)), os.geteuid() == 0, str(data) if data else None)

    def argv(self, work: Path, limits: Limits, seccomp_fd: int) -> list[str]:
        """The ``bwrap`` command line up to the command it runs."""
        args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
                "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "grading"]
        if self.as_root:
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        for name in TOP_FOLDERS:
            top = Path("/") / name
            if top.is_symlink():
                args += ["--symlink", os.readlink(top), str(top)]
            elif top.is_dir():
                args += ["--ro-bind", str(top), str(top)]
        bound = [Path(p) for p in self.read_only]
        parents = sorted({a for p in bound for a in p.parents if a != Path("/") and not _under(a, bound)})
        for folder in parents:  # traversable by the sandbox's user (bwrap would make them 0700)
            args += ["--perms", "0755", "--dir", str(folder)]
        for path in self.read_only:
            args += ["--ro-bind", path, path]
        if self.data_dir is not None:
            args += ["--ro-bind", self.data_dir, SANDBOX_DATA]
        return args + ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmp_mb * MB),
                       "--perms", "1777", "--tmpfs", "/tmp", "--ro-bind", str(work), SANDBOX_ROOT,
                       "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SANDBOX_ROOT,
                       "--seccomp", str(seccomp_fd), "--"]


@dataclass
class RunEnd:
    """How one run ended: its events, why the watchdog stopped it (``""``: it ended by itself), its exit
    code, the test it was running when it ended (``None``: none) and its seconds."""

    events: list[dict] = field(default_factory=list)
    stopped: str = ""
    returncode: int | None = None
    current: str | None = None
    seconds: float = 0.0


def _children(pid: int) -> list[int]:
    """The child processes of ``pid``, from the ``children`` file of each of its threads."""
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found += [int(child) for child in f.read().split()]
    except OSError:  # it ended meanwhile
        pass
    return found


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += _children(pid)
    return found


_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_usage(root: int) -> tuple[list[int], int, float]:
    """``root`` and its descendants, their resident memory (bytes, summed: shared pages count once per
    process) and their CPU seconds (user and system)."""
    pids, rss, cpu = _descendants(root), 0, 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) * _TICK_S
        rss += int(fields[21]) * _PAGE
    return pids, rss, cpu


def proportional_memory(pids: list[int]) -> int:
    """Bytes of memory of ``pids``, shared pages split among the processes that share them (the sum of
    their proportional set sizes: exact, but costlier to read than the resident sizes)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith(b"Pss:"))
        except (OSError, StopIteration):
            continue
    return total


class _Events(threading.Thread):
    """Reads the runner's events from the pipe: at most :data:`MAX_EVENT_BYTES`, malformed lines
    skipped; tracks the test running now (started, and neither its call nor a failure reported)."""

    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self.fd = fd
        self.events: list[dict] = []
        self.current: tuple[str, float] | None = None
        self.pid: int | None = None

    def run(self) -> None:
        size = 0
        with os.fdopen(self.fd, "rb") as pipe:
            for line in pipe:
                size += len(line)
                if size > MAX_EVENT_BYTES:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.take(event)

    def take(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start" and isinstance(event.get("nodeid"), str):
            self.current = (event["nodeid"], time.monotonic())
        elif kind == "report" and self.current and event.get("nodeid") == self.current[0] and (
                event.get("when") == "call" or event.get("outcome") != "passed"):
            self.current = None
        elif kind == "finish":
            self.current = None
        self.events.append(event)


def run_tests(work: Path, tests: list[str], limits: Limits, sandbox: Sandbox | None, log: Path, *,
              collect_only: bool = False, timeout_s: float | None = None, uid: int | None = None,
              data_dir: Path | None = None) -> RunEnd:
    """Run ``tests`` (node ids; ``[]``: pytest's defaults) with the runner in the working copy ``work``
    (in ``sandbox``, else as this user), stdout and stderr appended to ``log``; the watchdog stops it
    past ``timeout_s`` (default ``limits.timeout_s``), a test past ``limits.test_timeout_s`` or the
    tree past ``limits.memory_gb``. ``uid``: the user a root sandbox runs as; ``data_dir``: the data
    root the tests read (``COURSE_DATA_DIR``; in a sandbox, its own ``data_dir`` at :data:`SANDBOX_DATA`)."""
    read_end, write_end = os.pipe()
    rlimits = limits.rlimits()
    if sandbox is None:  # RLIMIT_NPROC would count every process of this user
        del rlimits["RLIMIT_NPROC"]
    config = {"fd": write_end, "tests": tests, "rlimits": rlimits, "collect_only": collect_only,
              "uid": uid if sandbox is not None and sandbox.as_root else None,
              "test_cpu_s": limits.test_cpu_s}
    root = SANDBOX_ROOT if sandbox is not None else str(work)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "USER": "student", "LOGNAME": "student",
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONPATH": root,
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": "/tmp/matplotlib", "COURSE_CACHE_DIR": "/tmp/cache", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
           **({"COURSE_DATA_DIR": str(data_dir)} if data_dir else {})}
    if sandbox is not None and sandbox.data_dir is not None:
        env["COURSE_DATA_DIR"] = SANDBOX_DATA
    scratch = Path(tempfile.mkdtemp(prefix="grading-")) if sandbox is None else None
    if scratch is not None:
        env.update(HOME=str(scratch), TMPDIR=str(scratch), MPLCONFIGDIR=str(scratch / "matplotlib"),
                   COURSE_CACHE_DIR=str(scratch / "cache"))
    runner = f"{SANDBOX_ROOT}/{RUNNER}" if sandbox is not None else str(Path(__file__).with_name("runner.py"))
    command = [sys.executable, runner, json.dumps(config)]
    fds = [write_end]
    if sandbox is not None:
        seccomp = os.memfd_create("grading-seccomp")
        os.write(seccomp, seccomp_filter())
        os.lseek(seccomp, 0, os.SEEK_SET)
        command = sandbox.argv(work, limits, seccomp) + command
        fds.append(seccomp)
    events = _Events(read_end)
    events.start()  # it ends at the pipe's end, also when the run does not start
    started = time.monotonic()
    end = RunEnd()
    try:
        with open(log, "ab") as out:
            proc = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, pass_fds=fds, start_new_session=True)
    finally:
        for fd in fds:
            os.close(fd)
    deadline = started + (limits.timeout_s if timeout_s is None else timeout_s)
    test_start: tuple[tuple[str, float], float] | None = None  # (events.current, tree CPU seconds then)
    try:
        while proc.poll() is None:
            now = time.monotonic()
            test = events.current
            pids, rss, cpu = tree_usage(proc.pid)
            if test is not None and (test_start is None or test_start[0] != test):
                test_start = (test, cpu)
            if now > deadline:
                end.stopped = f"stopped: the tests ran past the {limits.timeout_s:g} s allowed in all"
            elif test is not None and now - test[1] > limits.test_timeout_s:
                end.stopped = f"stopped: the test ran past the {limits.test_timeout_s:g} s allowed per test"
            elif (test is not None and test_start is not None
                  and cpu - test_start[1] > limits.test_cpu_s + CPU_GRACE_S):
                end.stopped = (f"stopped: the test used more than the {limits.test_cpu_s:g} s of CPU time "
                               "allowed")
            elif rss > limits.memory_gb * GB and proportional_memory(pids) > limits.memory_gb * GB:
                end.stopped = (f"stopped: the tests used more than the {limits.memory_gb:g} GB of memory "
                               "allowed")
            if end.stopped:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        events.join(timeout=10)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    end.events, end.returncode, end.seconds = events.events, proc.returncode, time.monotonic() - started
    end.current = events.current[0] if events.current else None
    return end


def check_sandbox(sandbox: Sandbox, scratch: Path) -> None:
    """Start an empty run in ``sandbox``; ``ValueError`` with bubblewrap's words when it cannot, or when
    the kernel does not list a process's children (the watchdog follows a run's processes by them)."""
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        raise ValueError("this kernel does not list processes' children in /proc (CONFIG_PROC_CHILDREN), "
                         "which the watchdog needs")
    scratch.mkdir(parents=True, exist_ok=True)
    fd = os.memfd_create("grading-seccomp")
    try:
        os.write(fd, seccomp_filter())
        os.lseek(fd, 0, os.SEEK_SET)
        done = subprocess.run(sandbox.argv(scratch, Limits(), fd) + [sys.executable, "-c", "pass"],
                              pass_fds=[fd], capture_output=True, text=True, timeout=120)
    finally:
        os.close(fd)
    if done.returncode != 0:
        raise ValueError(f"bubblewrap cannot start a sandbox here: {done.stderr.strip()[-500:]}")
