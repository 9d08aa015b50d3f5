/**
 * The manifold config files (manifold.conf(5)): public API.
 */
export { configBindings, configTargets, type ConfigBinding, type ConfigTarget } from './bindings.js';
export { checkAcrossFiles, configDirs, DEFAULT_CONFIG_DIRS, listConfigFiles, loadConfig, parseConfigFile, parseConfigText, verifyConfig, type LoadedConfig } from './load.js';
export { MAX_PROBLEMS_PER_FILE } from './problems.js';
export { configError, countProblems, formatProblem, type BindConfig, type ConfigProblem, type LabelConfig, type ListenConfig, type Registration, type TargetConfig, type UnitRef } from './types.js';
export { registerUnitFor, systemdEscape, systemdUnescape } from './unit-name.js';
