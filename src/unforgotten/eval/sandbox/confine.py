"""The sandbox's kernel layers, applied by the child bootstrap to itself (Linux, via libc).

Imported by ``child.py`` only (it runs as a script, so nothing here imports the package). Each
function either applies its layer and appends its name to ``layers``, or records in ``skipped``
why it could not; a missing layer is never an error by itself.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
_MOUNT_OPTS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
               "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
# statvfs f_flag bits -> mount flags: a bind remount inside a user namespace must keep them
_ST_TO_MS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME,
             2048: MS_NODIRATIME, 4096: MS_RELATIME}
PR_SET_PDEATHSIG, PR_SET_KEEPCAPS, PR_SET_SECCOMP, PR_CAPBSET_DROP = 1, 8, 22, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
CAP_DAC_READ_SEARCH = 2
_CAP_V3 = 0x20080522

# What the program's root holds besides its own directory: the system's shared libraries (which
# extension modules load), the Python install (added at run time) and a few harmless files.
SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin",
                "/etc/ld.so.cache", "/etc/localtime")
DEVICES = ("null", "zero", "full", "random", "urandom")


def libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        lib = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return lib


def _err(what: str) -> str:
    e = ctypes.get_errno()
    return f"{what}: {os.strerror(e)}"


def _mount(lib, src, dst, fstype, flags, data=None) -> None:
    enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    if lib.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {dst}: {os.strerror(ctypes.get_errno())}")


# --------------------------------------------------------------------------- namespaces


def enter_namespaces(lib, root: bool, layers: list, skipped: dict) -> dict:
    """New net/ipc/uts/mount/pid namespaces (in a user namespace when not root).

    Returns which took: {"user", "mnt", "pid"}. The PID namespace applies to children only:
    the caller must fork for it to matter.
    """
    uid, gid = os.getuid(), os.getgid()
    got = {"user": False, "mnt": False, "pid": False}
    base = CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if not root:
        if lib.unshare(CLONE_NEWUSER) != 0:
            skipped["userns"] = _err("unshare(CLONE_NEWUSER)")
            skipped["netns"] = skipped["fs-view"] = skipped["pidns"] = "needs root or a user namespace"
            return got
        got["user"] = True
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                               ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        except OSError:
            pass
        layers.append("userns")
    if lib.unshare(base) == 0:
        layers.append("netns")
    else:
        skipped["netns"] = _err("unshare(CLONE_NEWNET)")
    got["mnt"] = lib.unshare(CLONE_NEWNS) == 0
    if not got["mnt"]:
        skipped["fs-view"] = _err("unshare(CLONE_NEWNS)")
    got["pid"] = lib.unshare(CLONE_NEWPID) == 0
    if not got["pid"]:
        skipped["pidns"] = _err("unshare(CLONE_NEWPID)")
    return got


def python_paths() -> list[str]:
    """The Python install's directories: its prefixes (site-packages included). sys.path
    entries outside them (an editable checkout's .pth) stay out of the view. Called before the
    namespaces, while the install is surely readable."""
    found = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                            os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))}
    return sorted(p for p in found if os.path.isdir(p))


def build_root(lib, cfg: dict, source: str, uid: int | None, python: list[str]) -> str:
    """An empty tmpfs root at ``cfg['root']`` holding read-only binds of the system libraries and
    the Python install, /dev's harmless nodes, an empty /proc mount point, and the program's
    directory as a tmpfs of ``cfg['disk']`` bytes (the total write quota) with ``source`` in it
    as main.py. Raises OSError when the kernel refuses a step."""
    new, box = cfg["root"], cfg["dir"]
    _mount(lib, None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the parent
    _mount(lib, "none", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=755")
    done: list[str] = []
    for src in [*SYSTEM_PATHS, *python]:
        if not os.path.lexists(src) or any(src == d or src.startswith(d.rstrip("/") + "/") for d in done):
            continue
        dst = new + src
        if os.path.islink(src):  # merged /usr: /bin -> usr/bin
            os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
            os.symlink(os.readlink(src), dst)
            continue
        _bind_readonly(lib, src, dst)
        done.append(src)
    os.makedirs(new + "/dev", mode=0o755, exist_ok=True)
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            _bind_readonly(lib, "/dev/" + name, f"{new}/dev/{name}", readonly=False)
    os.makedirs(new + "/proc", mode=0o555, exist_ok=True)
    os.makedirs(new + box, mode=0o755, exist_ok=True)
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    _mount(lib, "none", new + box, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={cfg['disk']},nr_inodes=16384,mode=700{owner}")
    path = f"{new}{box}/main.py"
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(source)
    if uid is not None:
        os.chown(path, uid, uid)
    _mount(lib, None, new, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return new


def _bind_readonly(lib, src: str, dst: str, readonly: bool = True) -> None:
    if os.path.isdir(src):
        os.makedirs(dst, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
        open(dst, "a").close()
    _mount(lib, src, dst, None, MS_BIND | MS_REC)
    keep = 0
    f_flag = os.statvfs(src).f_flag
    for st, ms in _ST_TO_MS.items():
        if f_flag & st:
            keep |= ms
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | keep | (MS_RDONLY if readonly else 0)
    _mount(lib, None, dst, None, flags)


def enter_root(lib, new: str, box: str, with_proc: bool) -> None:
    """chroot into the root :func:`build_root` made (a fresh /proc first, for this PID
    namespace). Escaping a chroot needs CAP_SYS_CHROOT, which the caller drops next."""
    if with_proc:
        _mount(lib, "proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chroot(new)
    os.chdir(box)


def readonly_except(lib, box: str) -> bool:
    """Fallback when no new root: every mount read-only except a bind of ``box``."""
    if lib.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    bbox = box.encode()
    if lib.mount(bbox, bbox, None, MS_BIND, None) != 0:
        return False
    import re

    unescape = lambda s: re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)  # noqa: E731
    root_done = False
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        parts = line.split()
        if len(parts) < 6:
            continue
        mp = unescape(parts[4])
        if mp == box or mp.startswith(box + "/"):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in parts[5].split(","):
            flags |= _MOUNT_OPTS.get(opt, 0)
        if lib.mount(None, mp.encode(), None, flags, None) == 0 and mp == "/":
            root_done = True
    return root_done


# --------------------------------------------------------------------------- privileges


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


def drop_privileges(lib, uid: int | None, keep_read_search: bool, layers: list, skipped: dict) -> None:
    """Become ``uid`` (when given: as root) and hold no capability at all: the bounding and
    ambient sets emptied, then effective, permitted and inheritable cleared by capset and
    checked with capget. ``keep_read_search`` keeps CAP_DAC_READ_SEARCH in effective/permitted
    (only when the Python install is unreadable to ``uid`` and there is no new root)."""
    keep = CAP_DAC_READ_SEARCH if keep_read_search else None
    for cap in range(_last_cap() + 1):
        if cap != keep:
            lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL for caps this kernel lacks
    lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if uid is not None:
        if keep is not None:
            lib.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        layers.append("uid")
    header = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    if keep is not None:
        data[0].effective = data[0].permitted = 1 << keep
    if lib.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), _err("capset"))
    lib.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)
    got = (_CapData * 2)()
    if lib.capget(ctypes.byref(_CapHeader(_CAP_V3, 0)), got) != 0:
        raise OSError(ctypes.get_errno(), _err("capget"))
    held = [(d.effective | d.permitted | d.inheritable) for d in got]
    if keep is None and not any(held):
        layers.append("no-caps")
    elif keep is not None:
        skipped["no-caps"] = ("kept CAP_DAC_READ_SEARCH: the Python install is not readable by the "
                              "sandbox uid and there is no fs-view layer")
    else:
        raise OSError(f"capabilities still held after capset: {held}")


def world_readable(paths) -> bool:
    """Can any user traverse to (and read) each of ``paths``?"""
    for p in paths:
        p = os.path.realpath(p)
        parts = p.split("/")
        for i in range(2, len(parts) + 1):
            d = "/".join(parts[:i]) or "/"
            try:
                mode = os.stat(d).st_mode
            except OSError:
                return False
            if not mode & 0o001 or (d == p and not mode & 0o004):
                return False
    return True


# --------------------------------------------------------------------------- seccomp

# syscall numbers: (x86_64, aarch64). None: the architecture has no such call.
_SYSCALLS = {
    "execve": (59, 221), "execveat": (322, 281), "fork": (57, None), "vfork": (58, None),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39),
    "pivot_root": (155, 41), "chroot": (161, 51), "bpf": (321, 280), "perf_event_open": (298, 241),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "userfaultfd": (323, 282), "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "open_by_handle_at": (304, 265),
}
_CLONE = (56, 220)
_CLONE3 = (435, 435)
_ARCH = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}  # AUDIT_ARCH_*
_LD_W_ABS, _JEQ, _JSET, _RET = 0x20, 0x15, 0x45, 0x06
_ALLOW, _KILL, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_EPERM, _ENOSYS = 1, 38


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The BPF filter: EPERM for exec, fork (clone without CLONE_THREAD), ptrace, namespaces,
    mounts, io_uring (its operations bypass seccomp), bpf, keyrings; ENOSYS for clone3 (its
    flags live in memory a filter cannot read; glibc then falls back to clone for threads);
    any other architecture or ABI (x32) killed."""
    col, arch = _ARCH[machine]
    deny = (_RET, 0, 0, _ERRNO | _EPERM)
    prog = [(_LD_W_ABS, 0, 0, 4), (_JEQ, 1, 0, arch), (_RET, 0, 0, _KILL), (_LD_W_ABS, 0, 0, 0)]
    if machine == "x86_64":
        prog += [(0x35, 0, 1, 0x40000000), deny]  # jge: x32 syscalls
    for nrs in _SYSCALLS.values():
        if nrs[col] is not None:
            prog += [(_JEQ, 0, 1, nrs[col]), deny]
    prog += [(_JEQ, 0, 1, _CLONE3[col]), (_RET, 0, 0, _ERRNO | _ENOSYS)]
    prog += [(_JEQ, 0, 4, _CLONE[col]), (_LD_W_ABS, 0, 0, 16), (_JSET, 0, 1, CLONE_THREAD),
             (_RET, 0, 0, _ALLOW), deny]
    prog += [(_RET, 0, 0, _ALLOW)]
    return prog


def install_seccomp(lib, layers: list, skipped: dict) -> None:
    machine = platform.machine()
    if machine not in _ARCH:
        skipped["seccomp"] = f"no filter for architecture {machine}"
        return
    prog = seccomp_program(machine)
    arr = (_Filter * len(prog))(*[_Filter(*ins) for ins in prog])
    fprog = _Prog(len(prog), arr)
    lib.prctl.argtypes = None  # the third argument is a pointer here
    if lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or lib.prctl(PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0) != 0:
        skipped["seccomp"] = _err("prctl(PR_SET_SECCOMP)")
        return
    layers.append("seccomp")
