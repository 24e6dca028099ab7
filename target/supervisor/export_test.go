package supervisor

// ListenOutsideEphemeral lets the external tests pick ports as the supervisor does.
var ListenOutsideEphemeral = listenOutsideEphemeral
