// The one library product: every layer of Encore, re-exported so that `import RecCore` gives the whole API.
// The layers and their one-way dependencies are described in docs/architecture.md.

@_exported import EncoreCore
@_exported import EncoreData
@_exported import EncoreFactorization
@_exported import EncoreIndex
@_exported import EncorePlaylists
@_exported import EncoreStorage
@_exported import EncoreEventLog
@_exported import EncoreServing
@_exported import EncoreEvaluation
@_exported import EncoreAudio
@_exported import EncoreAudioModel
@_exported import EncoreAnalysis
@_exported import EncoreSynth
@_exported import EncoreText
@_exported import EncoreHybrid
@_exported import EncoreWeekly
