#![doc = include_str!("../README.md")]

pub mod cli;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod engine;
pub mod events;
pub mod executor;
pub mod graph;
pub mod http;
pub mod metrics;
pub mod plugins;
pub mod runtime;
pub mod server;
pub mod state;
pub mod stats;
pub mod worker;
