//! What spares most calls the `stat` of `Db::ensure_in_place`: on Linux, inotify watches on
//! every folder of the file's path (as SQLite resolved it, symlinks followed), read without
//! blocking at each call, and the mount table's change flag.
//!
//! The kernel queues an inotify event while the `unlink` or `rename` system call runs, and
//! marks the mount table changed while `mount` runs: a deletion, rename or replacement of
//! the file or of any folder above it, or a mount over one of them, that returned before a
//! call began is seen by that call. Then (and after a queue overflow) the call does the
//! `stat` as before, and also checks that each folder watched is still the one at its path
//! (so a folder renamed away and back keeps no stale watch); if one is not, this connection
//! uses the `stat` at every call from then on. Where no watch can be set up (not Linux, no
//! inotify descriptor or watch left, a folder not readable, no `/proc`), every call stats.
//!
//! One inotify descriptor serves the whole process (the per-user limit on them is often
//! 128), with one watch per folder, shared by every connection below it and counted.

#[cfg(target_os = "linux")]
pub(super) use linux::Watch;

/// Elsewhere there is nothing to watch with: every call stats.
#[cfg(not(target_os = "linux"))]
pub(super) struct Watch;

#[cfg(not(target_os = "linux"))]
impl Watch {
    pub(super) fn new(_path: &std::path::Path) -> Option<Watch> {
        None
    }
    pub(super) fn changes(&self) -> Option<u64> {
        None
    }
    pub(super) fn unchanged_since_confirmed(&self, _changes: u64) -> bool {
        false
    }
    pub(super) fn confirm(&self, _changes: u64) {}
    #[cfg(test)]
    pub(super) fn is_off(&self) -> bool {
        true
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::ffi::{CString, OsString};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Component, Path, PathBuf};
    use std::sync::Mutex;

    /// What a watched folder reports: its entries created, deleted or renamed, and itself
    /// deleted, renamed or unmounted.
    const MASK: u32 = libc::IN_CREATE
        | libc::IN_DELETE
        | libc::IN_MOVED_FROM
        | libc::IN_MOVED_TO
        | libc::IN_DELETE_SELF
        | libc::IN_MOVE_SELF
        | libc::IN_ONLYDIR;
    /// Events about the watched folder itself (`IN_IGNORED`: its watch is gone).
    const SELF: u32 = libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_UNMOUNT | libc::IN_IGNORED;

    /// File systems whose changes all go through this kernel, so inotify reports them all
    /// (on NFS, SMB, FUSE, 9p... another machine or a user-space server may change a folder
    /// unseen): ext2/3/4, XFS, Btrfs, tmpfs, overlayfs, ZFS, F2FS, bcachefs.
    const LOCAL: [u32; 8] = [
        0xEF53,
        0x5846_5342,
        0x9123_683E,
        0x0102_1994,
        0x794C_7630,
        0x2FC1_2FC1,
        0xF2F5_2010,
        0xCA45_1A4E,
    ];

    /// Whether the folder open as `fd` is on one of the `LOCAL` file systems.
    fn local(fd: libc::c_int) -> bool {
        // SAFETY: a `statfs` buffer for the call; the descriptor is the caller's.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // The magic numbers are 32 bits; `f_type`'s width and sign differ by platform.
        #[allow(clippy::unnecessary_cast)]
        let ok = unsafe { libc::fstatfs(fd, &mut st) } == 0 && LOCAL.contains(&(st.f_type as u32));
        ok
    }

    struct Folder {
        /// Connections using this watch.
        refs: usize,
        /// The names in it that are on some connection's path, counted.
        names: HashMap<OsString, usize>,
        /// Events about those names or the folder itself; only goes up.
        changes: u64,
        /// False once the kernel dropped the watch (`IN_IGNORED`).
        alive: bool,
    }

    struct Notify {
        fd: libc::c_int,
        /// `/proc/self/mounts`, whose `poll` reports a change of the mount table.
        mounts: libc::c_int,
        /// An epoll set of the two: one `epoll_wait` per call looks at a list the kernel
        /// appends to while the change happens (the wake-up of either file's wait queue),
        /// where `poll` would ask each file in turn (about 180 ns against 430 ns here).
        epoll: libc::c_int,
        folders: HashMap<libc::c_int, Folder>,
        /// Queue overflows and mount table changes; only goes up.
        everything: u64,
    }

    static NOTIFY: Mutex<Option<Notify>> = Mutex::new(None);

    /// The watches of one connection's file.
    pub(in crate::store::sqlite) struct Watch {
        /// Each folder of the path, with the name in it on the path, its watch and its
        /// (device, inode) when watched.
        folders: Vec<Watched>,
        /// The count of changes when the file was last found in place, if it was.
        confirmed: Cell<Option<u64>>,
        /// Set for good once a folder watched was found no longer on the path.
        off: Cell<bool>,
    }

    struct Watched {
        dir: PathBuf,
        name: OsString,
        wd: libc::c_int,
        id: (u64, u64),
    }

    fn id_of(st: &libc::stat) -> (u64, u64) {
        #[allow(clippy::unnecessary_cast)]
        (st.st_dev as u64, st.st_ino as u64)
    }

    fn stat_path(path: &Path) -> Option<(u64, u64)> {
        let c = CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: a NUL-terminated path and a `stat` buffer that live for the call.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::stat(c.as_ptr(), &mut st) } == 0).then(|| id_of(&st))
    }

    impl Notify {
        fn start() -> Option<Notify> {
            // SAFETY: plain system calls; the descriptors are owned by the result.
            let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            let mounts = unsafe {
                libc::open(
                    c"/proc/self/mounts".as_ptr(),
                    libc::O_RDONLY | libc::O_CLOEXEC,
                )
            };
            if mounts < 0 {
                unsafe { libc::close(fd) };
                return None;
            }
            let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            let watched = epoll >= 0
                && [(fd, libc::EPOLLIN), (mounts, libc::EPOLLPRI)]
                    .iter()
                    .all(|&(file, events)| {
                        let mut e = libc::epoll_event {
                            events: events as u32,
                            u64: file as u64,
                        };
                        // SAFETY: an event that lives for the call; the descriptors are ours.
                        unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, file, &mut e) == 0 }
                    });
            if !watched {
                for d in [fd, mounts, epoll] {
                    if d >= 0 {
                        unsafe { libc::close(d) };
                    }
                }
                return None;
            }
            let mut n = Notify {
                fd,
                mounts,
                epoll,
                folders: HashMap::new(),
                everything: 0,
            };
            // The first poll of the mounts file reports a change: taken now.
            n.drain();
            Some(n)
        }

        /// Reads what the kernel queued (never waiting) into the counts.
        fn drain(&mut self) {
            let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
            // SAFETY: room for two events that lives for the call; no wait.
            let ready = unsafe { libc::epoll_wait(self.epoll, events.as_mut_ptr(), 2, 0) };
            let Ok(ready) = usize::try_from(ready) else {
                self.everything += 1;
                return;
            };
            for e in &events[..ready.min(2)] {
                // By value: the struct is packed on some targets.
                let (file, flags) = (e.u64, e.events);
                if file == self.mounts as u64 || file != self.fd as u64 {
                    // The mount table changed (or an event of no file of ours: counted too).
                    self.everything += 1;
                    continue;
                }
                if flags & !(libc::EPOLLIN as u32) != 0 {
                    self.everything += 1;
                }
                if flags & libc::EPOLLIN as u32 != 0 {
                    self.read_events();
                }
            }
        }

        fn read_events(&mut self) {
            const HEAD: usize = std::mem::size_of::<libc::inotify_event>();
            // Aligned for `inotify_event`; room for many events a read.
            let mut buf = [0u64; 1024];
            loop {
                // SAFETY: the buffer is writable for its whole size during the call.
                let n = unsafe {
                    libc::read(self.fd, buf.as_mut_ptr().cast(), std::mem::size_of_val(&buf))
                };
                if n <= 0 {
                    // EAGAIN: all read. Any other error: nothing can be trusted.
                    let again = n < 0
                        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN);
                    if !again {
                        self.everything += 1;
                    }
                    return;
                }
                let n = n as usize;
                let bytes = &buf;
                // SAFETY: u64s viewed as the bytes they are.
                let bytes: &[u8] =
                    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast(), n) };
                let mut at = 0;
                while at + HEAD <= n {
                    // SAFETY: a whole header is within what the kernel wrote; unaligned read.
                    let ev: libc::inotify_event =
                        unsafe { std::ptr::read_unaligned(bytes[at..].as_ptr().cast()) };
                    let end = (at + HEAD + ev.len as usize).min(n);
                    let raw = &bytes[at + HEAD..end];
                    let name = &raw[..raw.iter().position(|b| *b == 0).unwrap_or(raw.len())];
                    at = end;
                    if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                        self.everything += 1;
                        continue;
                    }
                    let Some(folder) = self.folders.get_mut(&ev.wd) else {
                        continue;
                    };
                    if ev.mask & SELF != 0 {
                        folder.changes += 1;
                        if ev.mask & libc::IN_IGNORED != 0 {
                            folder.alive = false;
                        }
                    } else if folder
                        .names
                        .contains_key(std::ffi::OsStr::from_bytes(name))
                    {
                        folder.changes += 1;
                    }
                }
            }
        }

        /// Watches the folder open as `dir` (exactly that one: through `/proc/self/fd`).
        fn add(&mut self, dir: libc::c_int, name: &OsString) -> Option<libc::c_int> {
            let link = CString::new(format!("/proc/self/fd/{dir}")).ok()?;
            // SAFETY: a NUL-terminated path that lives for the call.
            let wd = unsafe { libc::inotify_add_watch(self.fd, link.as_ptr(), MASK) };
            if wd < 0 {
                return None;
            }
            let folder = self.folders.entry(wd).or_insert(Folder {
                refs: 0,
                names: HashMap::new(),
                changes: 0,
                alive: true,
            });
            folder.refs += 1;
            *folder.names.entry(name.clone()).or_insert(0) += 1;
            Some(wd)
        }

        fn remove(&mut self, wd: libc::c_int, name: &OsString) {
            let Some(folder) = self.folders.get_mut(&wd) else {
                return;
            };
            if let Some(count) = folder.names.get_mut(name) {
                *count -= 1;
                if *count == 0 {
                    folder.names.remove(name);
                }
            }
            folder.refs -= 1;
            if folder.refs == 0 {
                let alive = folder.alive;
                self.folders.remove(&wd);
                if alive {
                    // SAFETY: a watch of this descriptor; failure leaves nothing to undo.
                    unsafe { libc::inotify_rm_watch(self.fd, wd) };
                }
            }
        }
    }

    impl Watch {
        /// Watches every folder of `path` (absolute, without symlinks: SQLite's name for the
        /// file), or `None` if that cannot be done (then every call stats).
        pub(in crate::store::sqlite) fn new(path: &Path) -> Option<Watch> {
            if !path.is_absolute()
                || path
                    .components()
                    .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
            {
                return None;
            }
            let mut guard = NOTIFY.lock().ok()?;
            if guard.is_none() {
                *guard = Notify::start();
            }
            let notify = guard.as_mut()?;
            let mut watch = Watch {
                folders: Vec::new(),
                confirmed: Cell::new(None),
                off: Cell::new(false),
            };
            let mut dir = PathBuf::new();
            for component in path.components() {
                let name: OsString = match component {
                    Component::RootDir => {
                        dir.push("/");
                        continue;
                    }
                    Component::Normal(name) => name.to_owned(),
                    _ => return watch.undo(notify),
                };
                let Some(fd) = open_dir(&dir) else {
                    return watch.undo(notify);
                };
                // SAFETY: a `stat` buffer for the call; the descriptor is ours.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                let ok = unsafe { libc::fstat(fd, &mut st) } == 0 && local(fd);
                let wd = ok.then(|| notify.add(fd, &name)).flatten();
                unsafe { libc::close(fd) };
                let Some(wd) = wd else {
                    return watch.undo(notify);
                };
                watch.folders.push(Watched {
                    dir: dir.clone(),
                    name: name.clone(),
                    wd,
                    id: id_of(&st),
                });
                dir.push(&name);
            }
            Some(watch)
        }

        fn undo(mut self, notify: &mut Notify) -> Option<Watch> {
            for w in self.folders.drain(..) {
                notify.remove(w.wd, &w.name);
            }
            None
        }

        /// The count of changes now (after reading what the kernel queued), or `None` if it
        /// cannot be told.
        pub(in crate::store::sqlite) fn changes(&self) -> Option<u64> {
            let mut guard = NOTIFY.lock().ok()?;
            let notify = guard.as_mut()?;
            notify.drain();
            let mut sum = notify.everything;
            for w in &self.folders {
                sum = sum.wrapping_add(notify.folders.get(&w.wd)?.changes);
            }
            Some(sum)
        }

        /// Whether nothing happened to the path since the file was last found in place.
        #[cfg(test)]
        pub(in crate::store::sqlite) fn is_off(&self) -> bool {
            self.off.get()
        }

        pub(in crate::store::sqlite) fn unchanged_since_confirmed(&self, changes: u64) -> bool {
            !self.off.get() && self.confirmed.get() == Some(changes)
        }

        /// The file was just found in place (after `changes` was counted): if every folder
        /// watched is still the one at its path, calls until the next change need no `stat`.
        pub(in crate::store::sqlite) fn confirm(&self, changes: u64) {
            if self.off.get() {
                return;
            }
            let alive = NOTIFY.lock().ok().is_some_and(|g| {
                g.as_ref().is_some_and(|n| {
                    self.folders
                        .iter()
                        .all(|w| n.folders.get(&w.wd).is_some_and(|f| f.alive))
                })
            });
            let same = alive
                && self
                    .folders
                    .iter()
                    .all(|w| stat_path(&w.dir) == Some(w.id));
            if same {
                self.confirmed.set(Some(changes));
            } else {
                // Stats from now on: the watches may be on folders no longer on the path.
                self.off.set(true);
            }
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            let Ok(mut guard) = NOTIFY.lock() else {
                return;
            };
            if let Some(notify) = guard.as_mut() {
                for w in self.folders.drain(..) {
                    notify.remove(w.wd, &w.name);
                }
            }
        }
    }

    /// A descriptor of the folder itself (`O_PATH`: no permission to list it needed).
    fn open_dir(dir: &Path) -> Option<libc::c_int> {
        let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: a NUL-terminated path that lives for the call.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        (fd >= 0).then_some(fd)
    }
}
