export {
  DEMO_ANSWER_FLAG_HEAD,
  DEMO_CHAT_TEMPLATE,
  DEMO_GENERATOR_NAME,
  DEMO_GENERATOR_VERSION,
  DEMO_PARTLY_REFUSING_VARIANT,
  DEMO_PLANTED_HEADS,
  DEMO_REFUSAL_HEAD,
  DEMO_REFUSAL_THRESHOLD,
  DEMO_SUPPRESSION_STRENGTHS,
  buildDemoCheckpoint,
  demoModelDir,
  demoRefusalProbe,
  writeDemoModel,
  type DemoCheckpointParts,
  type DemoModelInfo,
  type DemoProbe,
  type DemoVariant,
  type HeadRef,
} from './planted-model.js';
export { demoResourcesDir, loadDemoPrompts, loadDemoSafetyTrain, type DemoLabel, type DemoPrompt, type DemoTrainingItem } from './resources.js';
export { DEMO_COMPLIANCE_ANSWER, DEMO_HARMFUL_WORDS, DEMO_REFUSAL_ANSWER, DEMO_THINKING, demoVocabulary } from './vocabulary.js';
