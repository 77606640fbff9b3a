//! Everything about the application's JVM: launching the user's command the way CRIU needs it
//! (`launch`), its output as the evidence of a failure (`output`), the options cracin adds and
//! why (`options`, with `gc` for the collector and `cpu` for a CPU baseline), talking to the
//! running JVM (`attach` for diagnostic commands, `coordinate` for org.crac Resources,
//! `individual` for the JVMTI agent that makes each restore its own individual).

pub mod attach;
pub mod cds;
pub mod coordinate;
pub mod cpu;
pub mod gc;
pub mod individual;
pub mod launch;
pub mod options;
pub mod output;
pub mod squeeze;
