//! Posts are committed together: one task of the backend takes every post
//! waiting and stores them in one transaction (one commit, one `NOTIFY`),
//! as the writer does for the journal's writes. While a batch commits, the
//! posts that come meanwhile wait for the next. A batch the server refuses
//! is tried again post by post, so that a post fails alone.

use std::sync::{Arc, OnceLock, Weak};

use flow_core::storage::{Job, NewJob};
use flow_core::{Operation, StorageError};
use tokio::sync::{mpsc, oneshot};

use crate::jobs;
use crate::tx::transact;
use crate::writer::Shared;

type Reply = oneshot::Sender<Result<Job, StorageError>>;

/// At most this many posts in one transaction.
const MAX_BATCH: usize = 512;

/// The queue of a backend's posts, made at its first post.
#[derive(Debug, Default)]
pub(crate) struct Posts {
    queue: OnceLock<mpsc::UnboundedSender<(NewJob, Reply)>>,
}

impl Posts {
    /// Queues `post`; the answer comes once its batch committed.
    pub(crate) fn send(
        shared: &Arc<Shared>,
        runtime: &tokio::runtime::Handle,
        post: NewJob,
    ) -> oneshot::Receiver<Result<Job, StorageError>> {
        let queue = shared.posts.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            runtime.spawn(poster(Arc::downgrade(shared), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        // A closed queue drops `reply`: the caller hears the backend stopped.
        let _ = queue.send((post, reply));
        answer
    }
}

async fn store(shared: &Shared, posts: Arc<Vec<NewJob>>) -> Result<Vec<Job>, StorageError> {
    transact(shared, Operation::PostJob, move |c, s| {
        let posts = posts.clone();
        Box::pin(async move { jobs::post(c, &s.sql.jobs, &posts).await })
    })
    .await
}

async fn poster(shared: Weak<Shared>, mut rx: mpsc::UnboundedReceiver<(NewJob, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(post) => batch.push(post),
                Err(_) => break,
            }
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (posts, replies): (Vec<NewJob>, Vec<Reply>) = batch.into_iter().unzip();
        let posts = Arc::new(posts);
        match store(&shared, posts.clone()).await {
            Ok(jobs) => {
                for (reply, job) in replies.into_iter().zip(jobs) {
                    let _ = reply.send(Ok(job));
                }
            }
            Err(e) if posts.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            // Each alone, so that the post the server refuses fails alone.
            Err(_) => {
                for (post, reply) in posts.iter().zip(replies) {
                    let one = store(&shared, Arc::new(vec![post.clone()])).await;
                    let answer = one.and_then(|jobs| {
                        jobs.into_iter()
                            .next()
                            .ok_or_else(|| crate::stopped(Operation::PostJob))
                    });
                    let _ = reply.send(answer);
                }
            }
        }
    }
}
