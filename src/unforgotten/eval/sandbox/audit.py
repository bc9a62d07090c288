"""The sandbox's in-interpreter layer: an audit hook with readable errors.

Imported by ``child.py`` only. The hook cannot be removed once installed, but it lives inside
the interpreter it guards, so it is the friendly layer, not the boundary: the kernel layers
(seccomp, namespaces, no capabilities) hold when a trick gets past it. What it adds is a clear
``PermissionError`` naming the operation instead of a bare EPERM, and the rules the kernel
layers cannot express (no writes outside the directory even where no new root could be built).
"""

from __future__ import annotations

import os
import posixpath
import sys

DENY = frozenset({
    "os.fork", "os.forkpty", "os.exec", "os.spawn", "os.posix_spawn", "os.system",
    "subprocess.Popen", "os.startfile", "os.killpg",
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sethostname",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
    "ctypes.cdata", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "resource.setrlimit", "resource.prlimit", "sys.remote_exec", "cffi.dlopen",
})
# event: ((position of a path written/changed, position of its dir_fd or None), ...)
PATH_EVENTS = {
    "os.remove": ((0, 1),), "os.rmdir": ((0, 1),), "os.mkdir": ((0, 2),),
    "os.rename": ((0, 2), (1, 3)), "os.link": ((1, 3),), "os.symlink": ((1, 2),),
    "os.truncate": ((0, None),), "os.chmod": ((0, 2),), "os.chown": ((0, 3),),
    "os.utime": ((0, 3),), "os.chflags": ((0, None),), "os.lchflags": ((0, None),),
    "os.setxattr": ((0, None),), "os.removexattr": ((0, None),),
    "shutil.rmtree": ((0, 1),), "shutil.copyfile": ((1, None),), "shutil.copymode": ((1, None),),
    "shutil.copystat": ((1, None),), "shutil.copytree": ((1, None),),
    "shutil.move": ((0, None), (1, None)), "shutil.chown": ((0, None),),
    "shutil.make_archive": ((0, None),), "shutil.unpack_archive": ((1, None),),
}
# modules whose import would hand the code a fresh, unpatched way to start processes or call C
BANNED_IMPORTS = frozenset({"_posixsubprocess", "_ctypes", "_cffi_backend", "cffi"})


def _no_processes(*args, **kwargs):
    raise PermissionError("sandbox: starting processes is not allowed")


def close_process_bypasses() -> None:
    """``fork_exec`` raises no audit event, and ``subprocess`` keeps its own reference to it
    (``subprocess._fork_exec``): replace every copy, not only the module attribute."""
    import _posixsubprocess
    import subprocess

    _posixsubprocess.fork_exec = _no_processes
    subprocess._fork_exec = _no_processes
    # os.fork, os.posix_spawn and the os.exec family raise audit events (refused below).


def forget_c_access() -> None:
    """Drop the cached ctypes/_posixsubprocess modules the set-up imported: the code then has to
    import them afresh, and that import is refused (a fresh ``_posixsubprocess`` would carry the
    original ``fork_exec`` again)."""
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith("ctypes.")] + ["_ctypes", "_posixsubprocess"]:
        sys.modules.pop(name, None)


def install(box: str) -> None:
    close_process_bypasses()
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    writable_devices = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})
    prefix = box.rstrip("/") + "/"
    own_pid = os.getpid()
    af_unix = getattr(__import__("socket"), "AF_UNIX", 1)
    getcwd, fspath, fsdecode, readlink = os.getcwd, os.fspath, os.fsdecode, os.readlink
    join, normpath, realpath = posixpath.join, posixpath.normpath, posixpath.realpath
    no_dir_fd = (None, -1, -100)  # -1: what the audit events pass for none; -100: AT_FDCWD
    deny, path_events, banned = DENY, PATH_EVENTS, BANNED_IMPORTS

    def inside(p, dir_fd=None) -> bool:
        p = fspath(p)
        if isinstance(p, bytes):
            p = fsdecode(p)
        base = getcwd() if dir_fd in no_dir_fd else readlink(f"/proc/self/fd/{int(dir_fd)}")
        full = normpath(join(base, p))
        if full in writable_devices:
            return True
        full = realpath(full)
        return full == box or full.startswith(prefix)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags)
            if not writing or isinstance(path, int) or path is None:
                return
            try:
                ok = inside(path)
            except Exception:
                ok = False
            if not ok:
                raise PermissionError(f"sandbox: writing {path!r} (outside the sandbox directory) "
                                      "is not allowed")
            return
        if event in deny:
            raise PermissionError(f"sandbox: {event} is not allowed")
        spec = path_events.get(event)
        if spec is not None:
            for i, j in spec:
                if i >= len(args) or args[i] is None:
                    continue
                p = args[i]
                if isinstance(p, int):
                    if event == "os.truncate":  # ftruncate: the fd was checked when opened
                        continue
                    raise PermissionError(f"sandbox: {event} on a file descriptor is not allowed")
                try:
                    ok = inside(p, args[j] if j is not None and j < len(args) else None)
                except Exception:
                    ok = False
                if not ok:
                    raise PermissionError(f"sandbox: {event} on {p!r} (outside the sandbox "
                                          "directory) is not allowed")
            return
        if event == "socket.__new__":
            if len(args) > 1 and args[1] not in (af_unix, -1):
                raise PermissionError("sandbox: network sockets are not allowed")
        elif event == "os.kill":
            if args and args[0] not in (own_pid, 0):
                raise PermissionError("sandbox: signalling other processes is not allowed")
        elif event == "import":
            if args and args[0] in banned:
                raise PermissionError(f"sandbox: importing {args[0]} is not allowed")

    sys.addaudithook(hook)
