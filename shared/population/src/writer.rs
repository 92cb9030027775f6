//! Streaming the population to disk: one JSONL file per department (one proto3-JSON `CaseEvent` a line, what
//! `caselink submit` reads) and `truth.json`, whose persons array is written one person at a time.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use caselink_proto::v1::CaseEvent;

use crate::truth::{GroupTruth, PersonTruth};
use crate::{GenError, GenParams, DEPARTMENT_FILES, TRUTH_FILE};

const BUFFER: usize = 1 << 20;

struct Sink {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Sink {
    fn create(path: PathBuf) -> Result<Sink, GenError> {
        let file = File::create(&path).map_err(|source| GenError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Sink {
            path,
            w: BufWriter::with_capacity(BUFFER, file),
        })
    }

    fn io(&self, source: std::io::Error) -> GenError {
        GenError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), GenError> {
        self.w.write_all(bytes).map_err(|e| self.io(e))
    }

    fn json<T: serde::Serialize>(&mut self, value: &T) -> Result<(), GenError> {
        serde_json::to_writer(&mut self.w, value).map_err(|e| self.io(e.into()))
    }

    fn finish(mut self) -> Result<PathBuf, GenError> {
        self.w.flush().map_err(|e| self.io(e))?;
        Ok(self.path)
    }
}

/// The seven output files, open.
pub(crate) struct Output {
    departments: Vec<Sink>,
    truth: Sink,
    persons: u64,
    pub(crate) by_department: [u64; 6],
}

impl Output {
    /// Creates `out` if needed and the seven files in it (replacing earlier ones), and opens the truth document.
    pub(crate) fn create(out: &Path, params: &GenParams) -> Result<Output, GenError> {
        fs::create_dir_all(out).map_err(|source| GenError::Io {
            path: out.to_owned(),
            source,
        })?;
        let departments = DEPARTMENT_FILES
            .iter()
            .map(|(_, file)| Sink::create(out.join(file)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut truth = Sink::create(out.join(TRUTH_FILE))?;
        truth.write(b"{\"params\":")?;
        truth.json(params)?;
        truth.write(b",\"persons\":[")?;
        Ok(Output {
            departments,
            truth,
            persons: 0,
            by_department: [0; 6],
        })
    }

    /// Appends one event to its department's file.
    pub(crate) fn event(&mut self, department: usize, event: &CaseEvent) -> Result<(), GenError> {
        let sink = &mut self.departments[department];
        sink.json(event)?;
        sink.write(b"\n")?;
        self.by_department[department] += 1;
        Ok(())
    }

    /// Appends one person to the truth.
    pub(crate) fn person(&mut self, person: &PersonTruth) -> Result<(), GenError> {
        self.truth
            .write(if self.persons == 0 { b"\n" } else { b",\n" })?;
        self.truth.json(person)?;
        self.persons += 1;
        Ok(())
    }

    /// Closes the persons array, writes the groups, flushes everything; returns the files written.
    pub(crate) fn finish(mut self, groups: &[GroupTruth]) -> Result<Vec<PathBuf>, GenError> {
        self.truth.write(b"\n],\"groups\":[")?;
        for (i, g) in groups.iter().enumerate() {
            self.truth.write(if i == 0 { b"\n" } else { b",\n" })?;
            self.truth.json(g)?;
        }
        self.truth.write(b"\n]}\n")?;
        let mut files = self
            .departments
            .into_iter()
            .map(Sink::finish)
            .collect::<Result<Vec<_>, _>>()?;
        files.push(self.truth.finish()?);
        Ok(files)
    }
}
