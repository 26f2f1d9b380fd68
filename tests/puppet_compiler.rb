# A catalog compiler that stays up: the unit suite's `puppet catalog find --terminus compiler`,
# without paying Ruby's and Puppet's start (about 3 s of CPU) for each of its ~60 catalogs.
#
# One request per line on stdin, one answer per line on stdout (JSON):
#   request  {"root": DIR, "node": NAME, "facts": {...}, "env": {"CASTELET_SECRETS_DIR": ...}}
#   answer   {"returncode": 0|1, "catalog": {...}|null, "log": "Warning: ...\nError: ..."}
# DIR is a scratch environment (tests/test_puppet.py: Environment): its environment is
# DIR/code/environments/production, its hiera config DIR/conf/hiera.yaml. Each request gets a
# new environment loader, so manifests, hiera data and Puppet-language functions are read afresh;
# only Puppet's own Ruby code stays loaded.
require 'fileutils'
require 'json'
require 'puppet'

BASEMODULEPATH = ARGV.fetch(0)
scratch = ARGV.fetch(1)
%w[conf var log run ssl public code].each { |sub| FileUtils.mkdir_p(File.join(scratch, sub)) }
Puppet.initialize_settings([
  '--confdir', File.join(scratch, 'conf'), '--vardir', File.join(scratch, 'var'),
  '--logdir', File.join(scratch, 'log'), '--rundir', File.join(scratch, 'run'),
  '--ssldir', File.join(scratch, 'ssl'), '--publicdir', File.join(scratch, 'public'),
  '--codedir', File.join(scratch, 'code'), '--basemodulepath', BASEMODULEPATH,
  '--color', 'false'
])
Puppet[:environment] = 'production'

# Where a compile's warnings and errors go (Puppet matches a log destination by class name).
class CompileLog
  attr_reader :lines

  def initialize
    @lines = []
  end
end

Puppet::Util::Log.newdesttype :compile_log do
  match 'CompileLog'

  def initialize(log)
    @log = log
  end

  def handle(message)
    @log.lines << "#{message.level.to_s.capitalize}: #{message}\n"
  end
end

def compile(request)
  root = request.fetch('root')
  node_name = request.fetch('node')
  request.fetch('env', {}).each { |name, value| ENV[name] = value }
  Puppet[:hiera_config] = File.join(root, 'conf', 'hiera.yaml')
  Puppet[:environmentpath] = File.join(root, 'code', 'environments')
  environments = Puppet::Environments::Directories.new(Puppet[:environmentpath], [BASEMODULEPATH])
  logs = CompileLog.new
  Puppet::Util::Log.newdestination(logs)
  begin
    # The environment's settings (manifest, modulepath) are read through the loader in place.
    catalog = Puppet.override({ environments: environments }, 'castelet unit compile') do
      environment = environments.get!(:production)
      Puppet.override({ current_environment: environment }, 'castelet unit compile') do
        facts = Puppet::Node::Facts.new(node_name, request.fetch('facts'))
        node = Puppet::Node.new(node_name, environment: environment, facts: facts)
        node.merge(facts.values)
        Puppet::Parser::Compiler.compile(node)
      end
    end
    { 'returncode' => 0, 'catalog' => catalog.to_data_hash, 'log' => render(logs) }
  rescue StandardError, ScriptError => e
    { 'returncode' => 1, 'catalog' => nil, 'log' => render(logs) + "Error: #{e.message} on node #{node_name}\n" }
  ensure
    Puppet::Util::Log.close(logs)
  end
end

def render(logs)
  logs.lines.join
end

$stdout.sync = true
$stdin.each_line do |line|
  $stdout.puts(JSON.generate(compile(JSON.parse(line))))
end
