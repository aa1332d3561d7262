//! The store's connections open their files through a thin layer over SQLite's own `unix`
//! VFS that writes a commit's WAL frames with one system call instead of two per frame.
//!
//! SQLite writes each WAL frame as two `pwrite`s (its 24-byte header, then the page), so a
//! store with a refresh token (six pages) made twelve system calls at commit, about a quarter
//! of its time on this machine (ext4: each call takes the inode's lock, dirties the page
//! cache's pages and updates the file's times). Here the frames a connection appends are
//! gathered in a buffer and written with one `pwrite` when the commit's last frame is
//! complete: the frame whose header carries the database's size after the commit (WAL
//! format: a non-zero "commit" field). That write is the one SQLite makes for the commit's
//! last page, so a failure (a full disk) fails the commit exactly as it would have, and the
//! WAL index that makes the commit visible to readers is written only after it (SQLite
//! updates it once every frame is written). Nothing else changes: what is on disk after a
//! commit, the locks, the checkpoints and every other file are SQLite's own.
//!
//! What is buffered: frames appended at the WAL's end, in order (a header continuing the
//! previous write starts or extends the buffer, the page after it joins). Anything else is
//! written through at once, after the buffer: the WAL's own header, a frame rewritten in
//! place, checksums rewritten. Before any other operation on the WAL (a read, a sync, a
//! truncate) the buffer is written; a write that fails keeps what it could not write, for
//! the next one (the commit's at the latest) to write or to fail with, so a failure no caller
//! reported cannot lose a frame. Frames of a transaction too large for the page cache (SQLite
//! writes them to the WAL before the commit) that a rollback leaves buffered are dropped when
//! the connection releases the WAL's write lock (the main file's shared-memory lock), so
//! nothing buffered outlives that lock, where it could land on frames another writer wrote.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Mutex, OnceLock};

use rusqlite::ffi;

/// The name the layer is registered under.
const NAME: &CStr = c"nts-unix-wal";
/// A WAL frame's header (WAL format: page number, commit size, salts, checksum).
const FRAME_HEADER: usize = 24;
/// Buffered frames of one transaction are written once they reach this size.
const MAX_BUFFER: usize = 1 << 20;
/// The most one `xWrite` of the `unix` VFS writes (it cuts a write to 128 KiB less a byte,
/// then reports the short write as a full disk), in whole 4 KiB.
const MAX_WRITE: usize = 124 << 10;

/// The layer's name for `Connection::open_with_flags_and_vfs`, registered on first use; `None`
/// where it cannot be (the default VFS is not `unix`): then connections use the default.
pub(super) fn name() -> Option<&'static CStr> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    REGISTERED.get_or_init(register).then_some(NAME)
}

fn register() -> bool {
    // SAFETY: sqlite3_vfs_find only reads SQLite's list of VFSes; the default one lives for
    // the process.
    let real = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
    // SAFETY: a non-null VFS from SQLite is valid for the process; its name is a C string.
    let Some(r) = (unsafe { real.as_ref() }) else {
        return false;
    };
    if r.zName.is_null() || unsafe { CStr::from_ptr(r.zName) } != c"unix" {
        return false;
    }
    let Ok(real_size) = usize::try_from(r.szOsFile) else {
        return false;
    };
    let Ok(size) = c_int::try_from(REAL_OFFSET + real_size) else {
        return false;
    };
    let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
        iVersion: r.iVersion.min(3),
        szOsFile: size,
        mxPathname: r.mxPathname,
        pNext: std::ptr::null_mut(),
        zName: NAME.as_ptr(),
        pAppData: real.cast(),
        xOpen: Some(open),
        xDelete: Some(delete),
        xAccess: Some(access),
        xFullPathname: Some(full_pathname),
        // The `unix` VFS's remaining methods ignore the VFS they are given.
        xDlOpen: r.xDlOpen,
        xDlError: r.xDlError,
        xDlSym: r.xDlSym,
        xDlClose: r.xDlClose,
        xRandomness: r.xRandomness,
        xSleep: r.xSleep,
        xCurrentTime: r.xCurrentTime,
        xGetLastError: r.xGetLastError,
        xCurrentTimeInt64: r.xCurrentTimeInt64,
        xSetSystemCall: r.xSetSystemCall,
        xGetSystemCall: r.xGetSystemCall,
        xNextSystemCall: r.xNextSystemCall,
    }));
    // SAFETY: the VFS is leaked, so it lives for the process as SQLite requires; 0: not made
    // the default.
    unsafe { ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK }
}

/// An open file: SQLite's `sqlite3_file` first (SQLite sees this), then the layer's state;
/// the `unix` VFS's own file follows at `REAL_OFFSET` in the same allocation.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    kind: Kind,
}

enum Kind {
    /// A main database file; its connection's WAL once that is open.
    Main {
        wal: *mut File,
    },
    Wal(Box<Frames>),
    Other,
}

const REAL_OFFSET: usize = std::mem::size_of::<File>().next_multiple_of(16);

/// A WAL's frames not written yet.
struct Frames {
    buffer: Vec<u8>,
    /// The offset of the buffer's first byte.
    start: i64,
    /// Where the last write (buffered or not) ended.
    end: i64,
    /// A commit frame's header is buffered: the next write is its page.
    commit_page_next: bool,
    /// Its connection's main file, while open.
    main: *mut File,
}

/// Main files by the name SQLite opened them with: a WAL's name leads back to that pointer
/// (`sqlite3_filename_database`), which is how a WAL finds its own connection's main file.
fn mains() -> std::sync::MutexGuard<'static, HashMap<usize, usize>> {
    static MAINS: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    let m = MAINS.get_or_init(Mutex::default);
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn real_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: `vfs` is the layer's, whose app data is the real VFS (see `register`).
    unsafe { (*vfs).pAppData.cast() }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real_vfs = real_vfs(vfs);
    // SAFETY: SQLite allocated `szOsFile` bytes at `file`: the layer's part, then the real
    // file's at REAL_OFFSET, which the real VFS fills in.
    unsafe {
        let real = file
            .cast::<u8>()
            .add(REAL_OFFSET)
            .cast::<ffi::sqlite3_file>();
        let Some(real_open) = (*real_vfs).xOpen else {
            (*file).pMethods = std::ptr::null();
            return ffi::SQLITE_CANTOPEN;
        };
        let rc = real_open(real_vfs, name, real, flags, out_flags);
        let Some(methods) = (*real).pMethods.as_ref().filter(|_| rc == ffi::SQLITE_OK) else {
            (*file).pMethods = std::ptr::null();
            return rc;
        };
        let kind = if flags & ffi::SQLITE_OPEN_WAL != 0 {
            Kind::Wal(Box::new(Frames {
                buffer: Vec::new(),
                start: 0,
                end: -1,
                commit_page_next: false,
                main: std::ptr::null_mut(),
            }))
        } else if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 && !name.is_null() {
            Kind::Main {
                wal: std::ptr::null_mut(),
            }
        } else {
            Kind::Other
        };
        let this = file.cast::<File>();
        this.write(File {
            base: ffi::sqlite3_file {
                pMethods: methods_like(methods),
            },
            real,
            kind,
        });
        match &mut (*this).kind {
            Kind::Main { .. } => {
                mains().insert(name as usize, this as usize);
            }
            Kind::Wal(frames) if !name.is_null() => {
                let main = ffi::sqlite3_filename_database(name);
                if let Some(&m) = mains().get(&(main as usize)) {
                    let m = m as *mut File;
                    if let Kind::Main { wal } = &mut (*m).kind {
                        *wal = this;
                        frames.main = m;
                    }
                }
            }
            _ => {}
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync: c_int) -> c_int {
    let real = real_vfs(vfs);
    // SAFETY: the real VFS's own method, given its own VFS.
    unsafe {
        (*real)
            .xDelete
            .map_or(ffi::SQLITE_IOERR_DELETE, |f| f(real, name, sync))
    }
}

unsafe extern "C" fn access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let real = real_vfs(vfs);
    // SAFETY: as `delete`.
    unsafe {
        (*real)
            .xAccess
            .map_or(ffi::SQLITE_IOERR_ACCESS, |f| f(real, name, flags, out))
    }
}

unsafe extern "C" fn full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let real = real_vfs(vfs);
    // SAFETY: as `delete`.
    unsafe {
        (*real)
            .xFullPathname
            .map_or(ffi::SQLITE_CANTOPEN, |f| f(real, name, n, out))
    }
}

/// The layer's file and the real file's methods.
///
/// # Safety
/// `f` is a file this layer opened, not closed yet.
unsafe fn parts<'a>(f: *mut ffi::sqlite3_file) -> (&'a mut File, &'a ffi::sqlite3_io_methods) {
    // SAFETY: per the contract; the real file's methods table is static in SQLite.
    unsafe {
        let file = &mut *f.cast::<File>();
        let methods = &*(*file.real).pMethods;
        (file, methods)
    }
}

impl File {
    /// Writes this WAL's buffered frames (nothing for other files).
    ///
    /// # Safety
    /// The file is open.
    unsafe fn flush(&mut self) -> c_int {
        match &mut self.kind {
            Kind::Wal(frames) => unsafe { frames.flush(self.real) },
            _ => ffi::SQLITE_OK,
        }
    }

    /// Drops this WAL's buffered frames.
    fn discard(&mut self) {
        if let Kind::Wal(frames) = &mut self.kind {
            frames.buffer.clear();
            frames.commit_page_next = false;
        }
    }

    /// For a main file, its connection's WAL, if open.
    fn linked_wal(&mut self) -> Option<&mut File> {
        match &mut self.kind {
            // SAFETY: the link is cleared when either file closes.
            Kind::Main { wal } => unsafe { wal.as_mut() },
            _ => None,
        }
    }
}

impl Frames {
    /// # Safety
    /// `real` is the open WAL file.
    unsafe fn flush(&mut self, real: *mut ffi::sqlite3_file) -> c_int {
        if self.buffer.is_empty() {
            return ffi::SQLITE_OK;
        }
        let mut written = 0;
        while written < self.buffer.len() {
            let chunk = &self.buffer[written..self.buffer.len().min(written + MAX_WRITE)];
            let offset = self.start + written as i64;
            // SAFETY: per the contract.
            let rc = unsafe { write_slice(real, chunk, offset) };
            if rc != ffi::SQLITE_OK {
                // What was not written stays, for the next flush (the commit's at the latest)
                // to write or to fail with: a caller may have ignored this failure.
                self.buffer.drain(..written);
                self.start = offset;
                return rc;
            }
            written += chunk.len();
        }
        self.buffer.clear();
        ffi::SQLITE_OK
    }

    fn push(&mut self, data: &[u8], offset: i64) {
        if self.buffer.is_empty() {
            self.start = offset;
        }
        self.buffer.extend_from_slice(data);
    }

    /// # Safety
    /// `real` is the open WAL file; `data` is what SQLite asked to write.
    unsafe fn write(&mut self, real: *mut ffi::sqlite3_file, data: &[u8], offset: i64) -> c_int {
        let buffered_end = self.start + self.buffer.len() as i64;
        if !self.buffer.is_empty() && offset != buffered_end {
            // SAFETY: per the contract.
            let rc = unsafe { self.flush(real) };
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let appending = offset == self.end;
        self.end = offset + data.len() as i64;
        if std::mem::take(&mut self.commit_page_next) {
            if appending {
                // The commit's last page: the buffer, this page included, goes out now.
                self.push(data, offset);
                // SAFETY: per the contract.
                unsafe { self.flush(real) }
            } else {
                // SAFETY: per the contract (nothing is buffered: see below).
                unsafe { write_slice(real, data, offset) }
            }
        } else if data.len() == FRAME_HEADER && appending {
            self.commit_page_next = data[4..8] != [0; 4];
            self.push(data, offset);
            ffi::SQLITE_OK
        } else if !self.buffer.is_empty() {
            self.push(data, offset);
            if self.buffer.len() >= MAX_BUFFER {
                // SAFETY: per the contract.
                unsafe { self.flush(real) }
            } else {
                ffi::SQLITE_OK
            }
        } else {
            // Written through: nothing is buffered here (a write not continuing the buffer
            // wrote it above; one continuing it continues the last write, so is `appending`).
            // SAFETY: per the contract.
            unsafe { write_slice(real, data, offset) }
        }
    }
}

/// # Safety
/// `real` is an open file of the real VFS.
unsafe fn write_slice(real: *mut ffi::sqlite3_file, data: &[u8], offset: i64) -> c_int {
    let len = c_int::try_from(data.len()).unwrap_or(c_int::MAX);
    // SAFETY: per the contract; `data` holds `len` bytes for the call.
    unsafe { write_real(real, data.as_ptr().cast(), len, offset) }
}

/// # Safety
/// `real` is an open file of the real VFS; `data` holds `len` bytes.
unsafe fn write_real(
    real: *mut ffi::sqlite3_file,
    data: *const c_void,
    len: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        match (*(*real).pMethods).xWrite {
            Some(w) => w(real, data, len, offset),
            None => ffi::SQLITE_IOERR_WRITE,
        }
    }
}

unsafe extern "C" fn close(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file it opened through this layer once.
    unsafe {
        let (file, methods) = parts(f);
        let mut flushed = file.flush();
        if let Some(wal) = file.linked_wal() {
            flushed = wal.flush();
        }
        match &mut file.kind {
            Kind::Main { wal } => {
                if let Some(w) = wal.as_mut() {
                    if let Kind::Wal(frames) = &mut w.kind {
                        frames.main = std::ptr::null_mut();
                    }
                }
                let mut mains = mains();
                mains.retain(|_, m| *m != f as usize);
            }
            Kind::Wal(frames) => {
                if let Some(Kind::Main { wal }) = frames.main.as_mut().map(|m| &mut m.kind) {
                    *wal = std::ptr::null_mut();
                }
            }
            Kind::Other => {}
        }
        let rc = methods.xClose.map_or(ffi::SQLITE_OK, |c| c(file.real));
        std::ptr::drop_in_place(std::ptr::addr_of_mut!(file.kind));
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            rc
        }
    }
}

unsafe extern "C" fn write(
    f: *mut ffi::sqlite3_file,
    data: *const c_void,
    len: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite gives an open file and `len` readable bytes at `data`.
    unsafe {
        let (file, _) = parts(f);
        match (&mut file.kind, usize::try_from(len)) {
            // Buffered only where the WAL's own connection will write it before releasing
            // the WAL's locks (see the module's comment).
            (Kind::Wal(frames), Ok(n)) if !data.is_null() && !frames.main.is_null() => frames
                .write(
                    file.real,
                    std::slice::from_raw_parts(data.cast::<u8>(), n),
                    offset,
                ),
            _ => write_real(file.real, data, len, offset),
        }
    }
}

/// Defines a method that first writes what a WAL has buffered (nothing for other files), then
/// calls the real file's; `$none` if it has none.
macro_rules! flushing {
    ($name:ident, $x:ident, $none:expr, ($($arg:ident: $ty:ty),*) -> c_int) => {
        unsafe extern "C" fn $name(f: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite calls with a file open through this layer.
            unsafe {
                let (file, methods) = parts(f);
                let rc = file.flush();
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                methods.$x.map_or($none, |m| m(file.real $(, $arg)*))
            }
        }
    };
}

/// Defines a method that only calls the real file's.
macro_rules! passing {
    ($name:ident, $x:ident, $none:expr, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        unsafe extern "C" fn $name(f: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: SQLite calls with a file open through this layer.
            unsafe {
                let (file, methods) = parts(f);
                methods.$x.map_or($none, |m| m(file.real $(, $arg)*))
            }
        }
    };
}

flushing!(read, xRead, ffi::SQLITE_IOERR_READ, (buf: *mut c_void, n: c_int, off: i64) -> c_int);
flushing!(truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, (size: i64) -> c_int);
flushing!(sync, xSync, ffi::SQLITE_IOERR_FSYNC, (flags: c_int) -> c_int);
flushing!(file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut i64) -> c_int);
flushing!(lock, xLock, ffi::SQLITE_IOERR_LOCK, (level: c_int) -> c_int);
flushing!(unlock, xUnlock, ffi::SQLITE_IOERR_UNLOCK, (level: c_int) -> c_int);
flushing!(file_control, xFileControl, ffi::SQLITE_NOTFOUND, (op: c_int, arg: *mut c_void) -> c_int);
flushing!(fetch, xFetch, ffi::SQLITE_OK, (off: i64, n: c_int, out: *mut *mut c_void) -> c_int);
passing!(shm_map, xShmMap, ffi::SQLITE_IOERR_SHMMAP,
    (page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int);
passing!(check_reserved_lock, xCheckReservedLock, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
    (out: *mut c_int) -> c_int);
passing!(sector_size, xSectorSize, 4096, () -> c_int);
passing!(device_characteristics, xDeviceCharacteristics, 0, () -> c_int);
passing!(unfetch, xUnfetch, ffi::SQLITE_OK, (off: i64, p: *mut c_void) -> c_int);

/// The WAL index's locks, on the main file. What its connection's WAL holds when the write
/// lock (slot 0) is released belongs to no commit (a commit's last page wrote it all): frames
/// of a transaction rolled back, past the WAL's committed end. They are written if they can
/// be, then dropped, so that nothing buffered outlives the lock; the release always happens.
unsafe extern "C" fn shm_lock(
    f: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: SQLite calls with a file open through this layer; its linked WAL is open.
    unsafe {
        let (file, methods) = parts(f);
        if flags & ffi::SQLITE_SHM_UNLOCK != 0 && offset == 0 {
            if let Some(wal) = file.linked_wal() {
                let _ = wal.flush();
                wal.discard();
            }
        }
        methods.xShmLock.map_or(ffi::SQLITE_IOERR_SHMLOCK, |m| {
            m(file.real, offset, n, flags)
        })
    }
}

/// The WAL index unmapped (the connection ends its use of the WAL): its WAL's frames first.
unsafe extern "C" fn shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: as `shm_lock`.
    unsafe {
        let (file, methods) = parts(f);
        if let Some(wal) = file.linked_wal() {
            let rc = wal.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        methods
            .xShmUnmap
            .map_or(ffi::SQLITE_OK, |m| m(file.real, delete))
    }
}

/// Before SQLite publishes a commit in the WAL index, between its header's two copies.
/// Nothing is buffered there after a commit (its last page wrote it all); should anything
/// be, it is written here, and if it cannot be, it stays for the WAL's next flush.
unsafe extern "C" fn shm_barrier(f: *mut ffi::sqlite3_file) {
    // SAFETY: as `shm_lock`.
    unsafe {
        let (file, methods) = parts(f);
        if let Some(wal) = file.linked_wal() {
            let _ = wal.flush();
        }
        if let Some(b) = methods.xShmBarrier {
            b(file.real);
        }
    }
}

const fn methods(version: c_int, shm: bool) -> ffi::sqlite3_io_methods {
    let mut m = ffi::sqlite3_io_methods {
        iVersion: version,
        xClose: Some(close),
        xRead: Some(read),
        xWrite: Some(write),
        xTruncate: Some(truncate),
        xSync: Some(sync),
        xFileSize: Some(file_size),
        xLock: Some(lock),
        xUnlock: Some(unlock),
        xCheckReservedLock: Some(check_reserved_lock),
        xFileControl: Some(file_control),
        xSectorSize: Some(sector_size),
        xDeviceCharacteristics: Some(device_characteristics),
        xShmMap: Some(shm_map),
        xShmLock: Some(shm_lock),
        xShmBarrier: Some(shm_barrier),
        xShmUnmap: Some(shm_unmap),
        xFetch: Some(fetch),
        xUnfetch: Some(unfetch),
    };
    if !shm {
        m.xShmMap = None;
        m.xShmLock = None;
        m.xShmBarrier = None;
        m.xShmUnmap = None;
    }
    m
}

static METHODS: [[ffi::sqlite3_io_methods; 3]; 2] = [
    [methods(1, false), methods(2, false), methods(3, false)],
    [methods(1, true), methods(2, true), methods(3, true)],
];

/// The layer's methods as the real file's are: the same version, and shared memory only
/// where the real file has it (SQLite uses WAL mode only where `xShmMap` is there; a file
/// opened with `nolock=1` has none).
fn methods_like(real: &ffi::sqlite3_io_methods) -> *const ffi::sqlite3_io_methods {
    let version = usize::try_from(real.iVersion.clamp(1, 3) - 1).unwrap_or(0);
    let shm = real.iVersion >= 2 && real.xShmMap.is_some();
    &METHODS[usize::from(shm)][version]
}
